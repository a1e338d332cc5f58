"""The processing kernel against a bare aiokafka loop, side by side on the same broker.

Run with `make bench` (it starts a broker of its own). Figures, each beside its target:
- chronic readings/s on one instance, and the ratio to a bare aiokafka loop (consume ->
  decode -> threshold -> produce -> commit) over the same pre-loaded readings;
- restart to processing after SIGTERM (static membership: no rebalance wait);
- p99 reading -> AlertRaised (read_committed) at a steady 1,000 readings/s, the stream
  alone, then again while the gRPC calls below run;
- GetPatientStatus p99 at 500 QPS while readings stream, and the QPS of chronic against a
  bare grpc.aio server returning the same message.
Results go to .local/bench/kernel-<time>.json. Machines here are shared: read the ratios.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from google.protobuf import json_format
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, CarePlanUpdated, ReadingRecorded
from emeuse.registry import ALERT_RAISED, CARE_PLAN_UPDATED, READING_RECORDED
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import headers_for, plan_json
from tests.integration.harness import Platform, emeuse, metric

ROOT = Path(__file__).resolve().parents[1]
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "1000"))
READINGS = int(os.environ.get("BENCH_READINGS", "100000"))
INR = {
    "loinc_code": "34714-6",
    "unit": "{INR}",
    "low": 2,
    "high": 3,
    "critical_low": 1.5,
    "critical_high": 5,
}
# gRPC calls that failed, by status code: a failed call is never counted as answered.
FAILED_CALLS: dict[str, int] = {}
TARGETS = {
    "readings_per_s": 10_000,
    "ratio_to_bare": 0.3,
    "restart_to_processing_s": 10.0,
    "p99_reading_to_alert_ms": 50.0,
    "p99_reading_to_alert_under_grpc_ms": 50.0,
    "p99_get_patient_status_ms": 5.0,
    "qps_ratio_to_bare_grpc": 0.7,
    "failed_grpc_calls": 0,
}


def plan_record(patient: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    plan = json_format.ParseDict(
        plan_json(patient, f"cp-{uuid.uuid4()}", "ANTICOAGULATION", INR), CarePlanUpdated()
    )
    return patient.encode(), plan.SerializeToString(), headers_for(CARE_PLAN_UPDATED, patient)


def reading_record(patient: str, value: float) -> tuple[str, bytes, bytes, list[Any]]:
    reading_id = f"r-{uuid.uuid4()}"
    reading = ReadingRecorded(
        reading_id=reading_id,
        patient_pseudonym=patient,
        loinc_code="34714-6",
        value=value,
        unit="{INR}",
        measured_at=timestamp(datetime.now(UTC)),
        device_id="coagulometer-1",
    )
    return (
        reading_id,
        patient.encode(),
        reading.SerializeToString(),
        headers_for(READING_RECORDED, patient),
    )


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        pending = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def bare_loop(bootstrap: str, bands: dict[str, tuple[float, float]], total: int) -> float:
    """Readings/s of consume -> decode -> threshold -> produce -> commit, no framework."""
    alerts = f"bench-bare-alerts-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(alerts, 6, 1)])
    admin.close()
    consumer = AIOKafkaConsumer(
        READING_RECORDED.name,
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{uuid.uuid4()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await consumer.start()
    await producer.start()
    seen, started = 0, None
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            sends = []
            for records in batch.values():
                for record in records:
                    started = started or time.perf_counter()
                    reading = ReadingRecorded.FromString(record.value)
                    low, high = bands.get(reading.patient_pseudonym, (0.0, 1e9))
                    if not low <= reading.value <= high:
                        sends.append(
                            await producer.send(
                                alerts,
                                value=record.value,
                                key=record.key,
                            )
                        )
                    seen += 1
            await asyncio.gather(*sends)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
    assert started is not None
    return seen / (time.perf_counter() - started)


def committed_total(admin: KafkaAdminClient, group: str, topic: str) -> int:
    offsets = admin.list_group_offsets({group: None}).get(group, {})
    return sum(
        meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0
    )


def end_total(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def wait_committed(
    admin: KafkaAdminClient, group: str, topic: str, target: int, timeout: float
) -> tuple[float | None, float | None, int]:
    """(time of the first commit advance, time all committed, offset at first advance)."""
    start_value = committed_total(admin, group, topic)
    first = None
    at_first = start_value
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = committed_total(admin, group, topic)
        if first is None and value > start_value:
            first, at_first = time.monotonic(), start_value
        if value >= target:
            return first, time.monotonic(), at_first
        time.sleep(0.05)
    return first, None, at_first


async def alert_latency(bootstrap: str, target: str, rate: int, seconds: float) -> list[float]:
    """p99 reading -> AlertRaised at a steady rate: each latency patient gets one critical."""
    patients = [random_pseudonym() for _ in range(int(rate * seconds * 0.05) + 1)]
    await produce(bootstrap, CARE_PLAN_UPDATED.name, [plan_record(p) for p in patients])
    await asyncio.sleep(3)  # plans applied (they precede readings in real life)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer(
        ALERT_RAISED.name,
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="latest",
        group_id=None,
    )
    await consumer.start()
    await consumer.getmany(timeout_ms=500)  # positions set before the first reading

    async def read_alerts() -> None:
        while len(latencies) < len(patients):
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    alert = AlertRaised.FromString(record.value)
                    for reading_id in alert.reading_ids:
                        if reading_id in sent:
                            latencies.append((now - sent.pop(reading_id)) * 1000)

    reader = asyncio.create_task(read_alerts())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    critical = iter(patients)
    period = 1 / rate
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i * period - time.perf_counter()))
        patient = next(critical, None) if i % 20 == 0 else None
        value = 6.5 if patient else 2.5
        # In-range readings spread over the patients, round robin: a steady mix.
        someone = patient or patients[i % len(patients)]
        reading_id, key, payload, headers = reading_record(someone, value)
        if patient:
            sent[reading_id] = time.perf_counter()
        await producer.send(READING_RECORDED.name, value=payload, key=key, headers=headers)
    await producer.stop()
    try:
        await asyncio.wait_for(reader, 30)
    except TimeoutError:
        print(f"  {len(sent)} alerts not seen within 30 s", file=sys.stderr)
    await consumer.stop()
    return latencies


async def grpc_load(
    target: str, call: Callable[[Any], Awaitable[Any]], qps: int, seconds: float
) -> list[float]:
    """Latencies (ms) of calls started at a steady rate (open loop)."""
    latencies: list[float] = []

    async def one() -> None:
        started = time.perf_counter()
        try:
            await call(None)
        except grpc.aio.AioRpcError as exc:
            FAILED_CALLS[exc.code().name] = FAILED_CALLS.get(exc.code().name, 0) + 1
            return
        latencies.append((time.perf_counter() - started) * 1000)

    tasks = []
    period = 1 / qps
    start = time.perf_counter()
    for i in range(int(qps * seconds)):
        await asyncio.sleep(max(0.0, start + i * period - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


async def closed_loop_qps(
    call: Callable[[], Awaitable[Any]], seconds: float, workers: int
) -> float:
    done = 0
    until = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < until:
            try:
                await call()
            except grpc.aio.AioRpcError as exc:
                FAILED_CALLS[exc.code().name] = FAILED_CALLS.get(exc.code().name, 0) + 1
                continue
            done += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / seconds


class _Bare(api_grpc.ChronicServiceServicer):
    def __init__(self, answer: api.GetPatientStatusResponse) -> None:
        self.answer = answer

    async def GetPatientStatus(self, request: Any, context: Any) -> Any:
        return self.answer


def _stream_in_own_process(bootstrap: str, target: str, out: Any) -> None:
    """The steady reading stream and its alert reader, in a process of their own: sharing
    the gRPC client's event loop, each would slow the other and be measured as the
    service's latency."""
    out.send(asyncio.run(alert_latency(bootstrap, target, 1000, 22)))


def _bare_server_in_own_process(answer: bytes, ready: Any) -> None:
    """A bare grpc.aio server returning the same message: the floor the machine and the
    client allow, measured like chronic (another process, the same load around it)."""

    async def serve() -> None:
        server = grpc.aio.server()
        api_grpc.add_ChronicServiceServicer_to_server(
            _Bare(api.GetPatientStatusResponse.FromString(answer)), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready.send(port)
        await server.wait_for_termination()

    asyncio.run(serve())


def stream_alone(bootstrap: str, target: str) -> list[float]:
    """Reading -> alert latencies (ms) of the steady stream with no gRPC call running: what
    the kernel itself takes, from its own process like under load."""
    spawn = multiprocessing.get_context("spawn")
    latencies_in, latencies_out = spawn.Pipe(duplex=False)
    stream = spawn.Process(target=_stream_in_own_process, args=(bootstrap, target, latencies_out))
    stream.start()
    try:
        latencies: list[float] = latencies_in.recv()
    finally:
        stream.join(60)
        if stream.is_alive():
            stream.kill()
    return latencies


async def under_load(
    platform: Platform, bootstrap: str, target: str, patient: str
) -> tuple[list[float], dict[str, float]]:
    """Readings at a steady 1,000/s (alert latency) while GetPatientStatus runs at 500 QPS,
    against chronic and against a bare server, each load from its own process."""
    spawn = multiprocessing.get_context("spawn")
    latencies_in, latencies_out = spawn.Pipe(duplex=False)
    stream = spawn.Process(target=_stream_in_own_process, args=(bootstrap, target, latencies_out))
    stream.start()
    await asyncio.sleep(5)  # the stream is flowing (plans applied) before the calls start
    chronic = platform.services["chronic"].process
    shares = CpuShares(
        {"broker": broker_pid(), "chronic": chronic.pid if chronic else None, "stream": stream.pid}
    )
    try:
        figures = await grpc_figures(platform, target, patient)
        figures.update(shares.percent())
        loop = asyncio.get_running_loop()
        latencies = await loop.run_in_executor(None, latencies_in.recv)
    finally:
        stream.join(60)
        if stream.is_alive():
            stream.kill()
    return latencies, figures


def broker_pid() -> int | None:
    """The local broker's pid (kafka.sh writes it), to see what share of the machine it takes."""
    try:
        return int((Path(os.environ["KAFKA_HOME"]) / "kafka.pid").read_text().split()[0])
    except (KeyError, OSError, ValueError, IndexError):
        return None


class CpuShares:
    """CPU used by each process (and this one, the gRPC client) from now to `percent()`, in
    % of one core: on a 2-core machine the broker, chronic and the load share 200 %."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self.started = time.monotonic()
        self.before = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        self.client_before = time.process_time()

    def percent(self) -> dict[str, float]:
        wall = max(time.monotonic() - self.started, 1e-6)
        shares = {
            f"cpu_{name}_pct": 100 * (_cpu_seconds(pid) - self.before[name]) / wall
            for name, pid in self.pids.items()
        }
        shares["cpu_grpc_client_pct"] = 100 * (time.process_time() - self.client_before) / wall
        return shares


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def grpc_figures(platform: Platform, target: str, patient: str) -> dict[str, float]:
    auth = platform.auth
    request = api.GetPatientStatusRequest(patient_pseudonym=patient)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = api_grpc.ChronicServiceStub(channel)
        answer = await stub.GetPatientStatus(request, metadata=auth, timeout=5)

        async def status(_: Any = None) -> Any:
            return await stub.GetPatientStatus(request, metadata=auth, timeout=5)

        latencies = await grpc_load(target, status, 500, 4)
        chronic_qps = await closed_loop_qps(status, 2, 16)
    spawn = multiprocessing.get_context("spawn")
    port_in, port_out = spawn.Pipe(duplex=False)
    server = spawn.Process(
        target=_bare_server_in_own_process, args=(answer.SerializeToString(), port_out)
    )
    server.start()
    try:
        port = await asyncio.get_running_loop().run_in_executor(None, port_in.recv)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            bare = api_grpc.ChronicServiceStub(channel)

            async def bare_status(_: Any = None) -> Any:
                return await bare.GetPatientStatus(request, metadata=auth, timeout=5)

            bare_latencies = await grpc_load(target, bare_status, 500, 4)
            bare_qps = await closed_loop_qps(bare_status, 2, 16)
    finally:
        server.kill()
        server.join(5)
    if FAILED_CALLS:
        print(f"  failed gRPC calls by status: {FAILED_CALLS}", file=sys.stderr)
    return {
        "p99_get_patient_status_ms": _p99(latencies),
        "p50_get_patient_status_ms": statistics.median(latencies) if latencies else float("nan"),
        "bare_grpc_p99_ms": _p99(bare_latencies),
        "chronic_qps": chronic_qps,
        "bare_grpc_qps": bare_qps,
        "qps_ratio_to_bare_grpc": chronic_qps / bare_qps,
        "failed_grpc_calls": float(sum(FAILED_CALLS.values())),
    }


def _profile(process: Any, path: Path) -> subprocess.Popen[bytes] | None:
    """With BENCH_PROFILE=<seconds>, where chronic spends its time while it reads (py-spy,
    if installed: collapsed stacks, for a flame graph or `sort | uniq`), from that many
    seconds after its start (past imports and recovery) for 15 s."""
    spy = Path(sys.executable).parent / "py-spy"
    if not os.environ.get("BENCH_PROFILE") or not spy.exists():
        return None
    delay = float(os.environ["BENCH_PROFILE"])
    record = [
        str(spy),
        "record",
        "--format",
        "raw",
        "--nonblocking",
        "--rate",
        "250",
        "--duration",
        "15",
        "--pid",
        str(process.process.pid),
        "-o",
        str(path),
    ]
    return subprocess.Popen(
        ["sh", "-c", f'sleep {delay:g} && exec "$@"', "profile", *record],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Where a sample of chronic's stack is counted: the first stage one of its frames names.
STAGES = (
    ("commit: state encoded", "Framed.encode"),
    ("commit: RocksDB store", "PartitionStore.apply"),
    ("commit: transaction (sends, offsets)", "PartitionTask._commit"),
    ("handle: chronic's rules", "Kernel.handle", "(services/"),
    ("handle: headers, envelope, contract checks", "Kernel.handle"),
    ("timers", "PartitionTask._fire_timers"),
    ("fetch (aiokafka)", "Kernel._consume"),
    ("gRPC", "grpc"),
)


def _stage(frames: list[str]) -> str:
    for name, mark, *below in STAGES:
        at = next((i for i, frame in enumerate(frames) if mark in frame), None)
        if at is not None and (not below or any(below[0] in f for f in frames[at + 1 :])):
            return name
    return "event loop and the rest"


def where_the_cpu_goes(profile: Path) -> dict[str, float]:
    """Share of chronic's samples per stage, from py-spy's collapsed stacks."""
    shares: dict[str, int] = {}
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stage = _stage(stack.split(";"))
            shares[stage] = shares.get(stage, 0) + int(count)
    total = sum(shares.values()) or 1
    return {name: 100 * n / total for name, n in sorted(shares.items(), key=lambda kv: -kv[1])}


def print_where_the_cpu_goes(profile: Path) -> None:
    if not profile.exists():
        return
    print(f"where chronic's CPU goes while it reads (py-spy, {profile}):")
    for stage, share in where_the_cpu_goes(profile).items():
        print(f"  {share:5.1f} %  {stage}")


def where_the_time_goes(text: str) -> dict[str, float]:
    """Per transaction: records, ms in handlers, ms to commit (the kernel's histograms)."""
    batches = metric(text, "emeuse_kernel_batch_records_count")
    if not batches:
        return {}
    return {
        "batch_records_mean": metric(text, "emeuse_kernel_batch_records_sum") / batches,
        "batch_handle_ms_mean": metric(text, "emeuse_kernel_handle_seconds_sum") / batches * 1000,
        "batch_commit_ms_mean": metric(text, "emeuse_kernel_commit_seconds_sum") / batches * 1000,
    }


def _lower_is_better(name: str) -> bool:
    return name == "failed_grpc_calls" or (
        name.endswith(("_ms", "_s")) and not name.endswith("per_s")
    )


def _p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> int:
    bootstrap = os.environ.get("EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    created = emeuse("topics", "create", bootstrap=bootstrap)
    assert created.returncode == 0, created.stderr
    out = ROOT / ".local" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    platform = Platform(bootstrap, out / f"kernel-{stamp}")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    app_id = f"bench-chronic-{uuid.uuid4().hex[:8]}"
    figures: dict[str, float] = {}

    patients = [random_pseudonym() for _ in range(PATIENTS)]
    bands = {p: (1.5, 5.0) for p in patients}
    readings = [
        reading_record(patients[i % PATIENTS], 6.0 if i % 100 == 0 else 2.5)[1:]
        for i in range(READINGS)
    ]
    chronic = platform.new_process("chronic", app_id=app_id)
    platform.services["chronic"] = chronic
    try:
        chronic.start()
        chronic.wait_serving()
        asyncio.run(produce(bootstrap, CARE_PLAN_UPDATED.name, [plan_record(p) for p in patients]))
        plans_end = end_total(bootstrap, CARE_PLAN_UPDATED.name)
        wait_committed(admin, app_id, CARE_PLAN_UPDATED.name, plans_end, 120)
        chronic.stop()
        # The same readings for both: pre-loaded, then each reads them all.
        before = end_total(bootstrap, READING_RECORDED.name)
        asyncio.run(produce(bootstrap, READING_RECORDED.name, readings))
        target = before + READINGS
        figures["bare_readings_per_s"] = asyncio.run(bare_loop(bootstrap, bands, target))
        restarted_at = time.monotonic()
        chronic.start()
        profile = _profile(chronic, out / f"kernel-{stamp}.profile.txt")
        first, last, at_first = wait_committed(admin, app_id, READING_RECORDED.name, target, 600)
        if first is None or last is None:
            print("bench: chronic did not finish the readings", file=sys.stderr)
            return 1
        if profile is not None:
            profile.wait()
            print_where_the_cpu_goes(out / f"kernel-{stamp}.profile.txt")
        figures["restart_to_processing_s"] = first - restarted_at
        figures["readings_per_s"] = (target - at_first) / max(last - first, 1e-6)
        figures["ratio_to_bare"] = figures["readings_per_s"] / figures["bare_readings_per_s"]
        figures.update(where_the_time_goes(chronic.metrics()))
        alone = stream_alone(bootstrap, chronic.grpc_target)
        figures["p99_reading_to_alert_ms"] = _p99(alone)
        figures["p50_reading_to_alert_ms"] = statistics.median(alone) if alone else float("nan")
        latencies, grpc = asyncio.run(
            under_load(platform, bootstrap, chronic.grpc_target, patients[0])
        )
        figures["p99_reading_to_alert_under_grpc_ms"] = _p99(latencies)
        figures["p50_reading_to_alert_under_grpc_ms"] = (
            statistics.median(latencies) if latencies else float("nan")
        )
        figures.update(grpc)
    finally:
        platform.stop_all()
        admin.close()
    return report(figures, out / f"kernel-{stamp}.json")


def plot(figures: dict[str, float], path: Path) -> None:
    """Each figure against its target, as a PNG (matplotlib: `pip install .[bench]`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot: matplotlib not installed (pip install '.[bench]'); no PNG")
        return
    names = [name for name in TARGETS if name in figures]
    # Measured over target, so that 1 is the target whichever way the figure goes.
    lower = [_lower_is_better(name) for name in names]
    scores = [
        ((TARGETS[n] or 1) / max(figures[n], 1e-9)) if low else (figures[n] / TARGETS[n])
        for n, low in zip(names, lower, strict=True)
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.barh(names, scores, color=["tab:green" if x >= 1 else "tab:red" for x in scores])
    left.axvline(1, color="black", linewidth=1)
    left.set_xscale("log")
    left.set_title("measured against target (>= 1 meets it)")
    right.bar(
        ["kernel", "bare aiokafka"],
        [figures.get("readings_per_s", 0), figures.get("bare_readings_per_s", 0)],
        color=["tab:blue", "tab:gray"],
    )
    right.set_title("readings/s, same broker, same readings")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


def report(figures: dict[str, float], path: Path) -> int:
    missed = []
    print(f"{'figure':32} {'measured':>12} {'target':>12}")
    for name, value in figures.items():
        target = TARGETS.get(name)
        lower_is_better = _lower_is_better(name)
        verdict = ""
        if target is not None:
            met = value <= target if lower_is_better else value >= target
            verdict = "met" if met else "MISSED"
            if not met:
                missed.append(name)
        shown = f"{'<=' if lower_is_better else '>='} {target:,.2f}" if target is not None else ""
        print(f"{name:32} {value:>12,.2f} {shown:>12} {verdict}")
    path.write_text(json.dumps({"figures": figures, "targets": TARGETS}, indent=2))
    print(f"results: {path}")
    plot(figures, path.with_suffix(".png"))
    if missed:
        print(f"bench: kernel targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    raise SystemExit(main())
