"""The whole platform under a simulated territory's load, beside a bare aiokafka loop.

Run with `make bench` (scripts/bench.sh gives it a broker of its own and stops it after).
It writes a seeded `emeuse simulate --dry-run` file (every axis: readings, home reports,
partners' readings, visits, opt-outs, consents, with its share of malformed records), starts
the seven services as processes (tests/integration/harness.py), sends the file's setup
stage by stage, then its live events: the records as fast as the simulator's transport
goes (unpaced), the gRPC calls beside them one after another per person (`People`), and
measures, in the same run:
- events/s taken end to end: the live events over the time from the first one sent until
  every service's consumer group has committed everything on the topics it reads (what the
  services published in turn included);
- per service, the time its group took to drain after the broker took the last record;
- the dead letters of the malformed share: each malformed record must come back on the
  dead-letter topic of every service that reads its topic, with a reason (or have been
  refused when sent); one missing is a failure;
- a bare aiokafka loop over the same live records (consume -> decode -> produce -> commit,
  read_committed, transactions off): the floor the broker and the machine allow.
Results go to .local/bench/simulate-<time>.json. The machine is shared: read the ratio.
Size with BENCH_SIM_RATE x BENCH_SIM_DURATION live events (default 500 x 30) at
BENCH_SIM_SCALE (0.01), seed BENCH_SIM_SEED (1).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as SyncPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from benchmarks.bench_kernel import CpuShares, broker_pid
from emeuse.cli.kafka_ready import main as kafka_ready
from emeuse.cli.main import main as emeuse_cli
from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from emeuse.registry import SERVICES, by_name, dead_letter_topic
from emeuse.simulate.events import GRPC, KAFKA, SimEvent
from emeuse.simulate.replay import Replay, read_events, record_id
from emeuse.simulate.send import PlatformTransport, Tally
from tests.integration.harness import Platform, emeuse

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("BENCH_SIM_SEED", "1"))
SCALE = float(os.environ.get("BENCH_SIM_SCALE", "0.01"))
RATE = int(os.environ.get("BENCH_SIM_RATE", "500"))
DURATION = int(os.environ.get("BENCH_SIM_DURATION", "30"))
DRAIN_LIMIT_S = float(os.environ.get("BENCH_SIM_DRAIN_LIMIT", "120"))
EXPERIMENT = "bench-simulate"
# The load `emeuse simulate --scale 1 --rate 5000` offers from one process (issue 15).
TARGETS = {
    "platform_events_per_s": 5_000.0,
    "slowest_drain_s": DRAIN_LIMIT_S,
    "malformed_unaccounted": 0.0,
    "failed_sends": 0.0,
}
GROUPS = {f"emeuse-{s}": s for s in SERVICES} | {"emeuse-gateway-inbound": "gateway-inbound"}


def write_load(path: Path) -> Replay:
    """The seeded load, as `emeuse simulate --dry-run` writes it. Its times end a minute ago,
    so nothing it says is in the future however long the setup takes."""
    start = datetime.now(UTC) - timedelta(seconds=DURATION + 60)
    code = emeuse_cli(
        [
            "simulate",
            "--dry-run",
            str(path),
            "--seed",
            str(SEED),
            "--scale",
            str(SCALE),
            "--rate",
            str(RATE),
            "--duration",
            str(DURATION),
            "--start",
            start.isoformat(),
            "--experiment",
            EXPERIMENT,
        ]
    )
    if code != 0:
        raise RuntimeError(f"emeuse simulate --dry-run exited {code}")
    with path.open() as lines:
        return read_events(lines)


def readers() -> dict[str, list[str]]:
    """Topic -> the services whose kernel reads it (their topics.KAFKA declarations)."""
    read: dict[str, list[str]] = {}
    for service in SERVICES:
        use = importlib.import_module(f"services.{service}.topics").KAFKA
        for spec in use.reads:
            read.setdefault(spec.name, []).append(service)
    return read


class Drain:
    """Watches the services' groups every half second: the last time each still had
    records to commit. A partition left one short of its end is drained once it stops
    moving: that one is the marker closing the last transaction written there, which no
    consumer commits past (Kafka gives it an offset; it is no record)."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-simulate")
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-simulate")
        self.lagging_at: dict[str, float] = {}  # group -> last time it had records to commit
        self.lag: dict[str, int] = {}
        self.before: dict[str, dict[SyncPartition, tuple[int, int]]] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _measure(self) -> dict[str, dict[SyncPartition, tuple[int, int]]]:
        """Group -> partition -> (committed, end), every partition of the topics it reads."""
        listed = self.admin.list_group_offsets({group: None for group in GROUPS})
        committed = {
            g: {tp: m.offset for tp, m in offsets.items() if m.offset >= 0}
            for g, offsets in listed.items()
        }
        for offsets in committed.values():
            for topic in {tp.topic for tp in offsets}:
                for p in self.consumer.partitions_for_topic(topic) or ():
                    offsets.setdefault(SyncPartition(topic, p), 0)  # all of it is lag
        partitions = sorted({tp for offsets in committed.values() for tp in offsets})
        ends = self.consumer.end_offsets(partitions) if partitions else {}
        return {
            g: {tp: (at, ends.get(tp, at)) for tp, at in offsets.items()}
            for g, offsets in committed.items()
        }

    def _lagging(self, group: str, now: dict[SyncPartition, tuple[int, int]]) -> bool:
        before = self.before.get(group, {})
        return any(
            end - at > 1 or (end - at == 1 and before.get(tp) != (at, end))
            for tp, (at, end) in now.items()
        )

    def _watch(self) -> None:
        while not self.stopping.is_set():
            try:
                measured = self._measure()
            except (KafkaError, KeyError):
                # kafka-python's end_offsets raises KeyError for a partition whose offset
                # lookup failed: measured again next round.
                self.stopping.wait(0.5)
                continue
            now = time.monotonic()
            for group, offsets in measured.items():
                self.lag[group] = sum(max(0, end - at) for at, end in offsets.values())
                if self._lagging(group, offsets):
                    self.lagging_at[group] = now
            self.before = measured
            self.stopping.wait(0.5)

    def start(self) -> None:
        self.thread.start()

    def wait(self, since: float, limit: float) -> bool:
        """Whether every group drained (had nothing to commit after `since`) within `limit`."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            time.sleep(1)
            quiet = time.monotonic() - 1.2
            if self.lag and all(self.lagging_at.get(g, since) < quiet for g in self.lag):
                return True
        return False

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.admin.close()
        self.consumer.close()


class People:
    """The live gRPC calls as the people making them do: one after another for each person
    (an aide checks out once her check-in is taken), people side by side, none before the
    records due before it were sent (a consent withdrawn does not overtake the readings it
    followed). A call the service
    took but had not applied within its wait (DEADLINE_EXCEEDED, "accepted but not applied
    yet": it is behind on its inputs) is asked again, as its answer says: the same call
    carries the same event id, so asking again applies it once."""

    def __init__(self, transport: PlatformTransport, tally: Tally) -> None:
        self.transport, self.tally = transport, tally
        self.asked_again = 0
        self.lock = threading.Lock()
        self.records_sent_to = -1.0  # the due time of the last record sent (the sender's)

    def _once(self, event: SimEvent) -> str | None:
        answered = threading.Event()
        outcome: list[str | None] = []

        def done(kind: str, error: str | None) -> None:
            outcome.append(error)
            answered.set()

        self.transport.send(event, done)
        answered.wait()
        return outcome[0]

    def _call(self, event: SimEvent, deadline: float) -> str | None:
        while True:
            error = self._once(event)
            if error is None or " DEADLINE_EXCEEDED" not in error or time.monotonic() > deadline:
                return error
            with self.lock:
                self.asked_again += 1

    def _person(self, calls: list[SimEvent], deadline: float) -> None:
        for event in calls:
            while self.records_sent_to < event.due and time.monotonic() < deadline:
                time.sleep(0.01)
            self.tally.started()
            self.tally.done(event.kind, self._call(event, deadline))

    def start(self, calls: list[SimEvent], limit_s: float) -> threading.Thread:
        by_person: dict[str, list[SimEvent]] = {}
        for event in calls:
            by_person.setdefault(event.subject, []).append(event)
        deadline = time.monotonic() + limit_s
        pool = ThreadPoolExecutor(16, thread_name_prefix="person")

        def run() -> None:
            with pool:
                for person in by_person.values():
                    pool.submit(self._person, person, deadline)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def send_and_wait(
    transport: PlatformTransport,
    events: list[SimEvent],
    tally: Tally,
    people: People | None = None,
) -> None:
    for event in events:
        tally.started()
        transport.send(event, tally.done)
        if people:
            people.records_sent_to = event.due
    if people:
        people.records_sent_to = float("inf")
    transport.flush()
    deadline = time.monotonic() + 120
    while tally.pending and time.monotonic() < deadline:
        time.sleep(0.1)


def ends_of(bootstrap: str, topics: set[str]) -> dict[SyncPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [SyncPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return consumer.end_offsets(tps)
    finally:
        consumer.close()


def dead_letters(bootstrap: str, services: set[str]) -> dict[tuple[str, str], str]:
    """(service, ce_id of the record set aside) -> reason, from the services' dead letters."""
    topics = {dead_letter_topic(s).name for s in services}
    ends = ends_of(bootstrap, topics)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign(list(ends))
    consumer.seek_to_beginning(*ends)
    found: dict[tuple[str, str], str] = {}
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and any(
            consumer.position(tp) < end for tp, end in ends.items()
        ):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    dead = MessageDeadLettered.FromString(record.value)
                    ce_id = dead.original_headers.get("ce_id", b"").decode(errors="replace")
                    found[dead.consumer, ce_id] = dead.reason
    finally:
        consumer.close()
    return found


def dead_letterers(event: SimEvent, read: dict[str, list[str]]) -> list[str]:
    """Who must set a malformed record aside: bytes that are no event, every service reading
    its topic (none can decode it); an event that decodes but breaks its topic's rules (a
    unit that is no UCUM code, a door event without its state), the service owning the
    topic, whose rules they are. Other readers may take it as it is (the gateway feeding it
    to a consenting partner, evaluation counting it)."""
    if event.raw is not None:
        return read.get(event.target, [])
    return [by_name(event.target).owner]


def account_for_malformed(
    replay: Replay, read: dict[str, list[str]], found: dict[tuple[str, str], str], tally: Tally
) -> dict[str, float]:
    expected = seen = 0
    unaccounted: list[str] = []
    for event in replay.malformed:
        for service in dead_letterers(event, read):
            expected += 1
            if found.get((service, record_id(event))):
                seen += 1
            else:
                unaccounted.append(f"{event.kind} {event.event_id} not dead-lettered by {service}")
    # A record the broker refused is accounted for by the send's failure (tally.failed).
    refused = sum(n for kind, n in tally.failed.items() if kind.startswith("malformed"))
    for line in unaccounted[:5]:
        print(f"  {line}", file=sys.stderr)
    return {
        "malformed_records": len(replay.malformed),
        "dead_letters_expected": expected,
        "dead_letters_with_reason": seen,
        "malformed_refused": refused,
        "malformed_unaccounted": max(0, len(unaccounted) - refused),
    }


def failed_sends(*tallies: Tally) -> dict[str, float]:
    failed = 0
    for tally in tallies:
        failed += sum(tally.failed.values())
        if tally.failed:
            print(f"  failed sends: {dict(tally.reasons.most_common(5))}", file=sys.stderr)
    return {"failed_sends": failed}


async def bare_loop(bootstrap: str, starts: dict[SyncPartition, int], total: int) -> float:
    """Records/s of consume -> decode -> produce -> commit over the same live records."""
    out = f"bench-sim-bare-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(out, 6, 1)])
    admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"{out}-group",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await consumer.start()
    await producer.start()
    partitions = [TopicPartition(tp.topic, tp.partition) for tp in starts]
    consumer.assign(partitions)
    for tp, offset in zip(partitions, starts.values(), strict=True):
        consumer.seek(tp, offset)
    messages = {tp.topic: by_name(tp.topic).message for tp in starts}
    seen, began = 0, None
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batch and began is not None:
                break  # the partner readings the gateway admitted are not in `total`
            sends = []
            for tp, records in batch.items():
                for record in records:
                    began = began or time.perf_counter()
                    try:
                        messages[tp.topic].FromString(record.value)
                        kind = b"ok"
                    except Exception:
                        kind = b"dead"
                    sends.append(await producer.send(out, value=record.value, key=kind))
                    seen += 1
            await asyncio.gather(*sends)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
    return seen / (time.perf_counter() - (began or time.perf_counter()))


@contextmanager
def running_platform(bootstrap: str, workdir: Path) -> Iterator[Platform]:
    platform = Platform(bootstrap, workdir)
    try:
        # chronic first: access is told its gRPC address.
        for service in ("chronic", *[s for s in SERVICES if s != "chronic"]):
            platform.start(service)
        for process in platform.services.values():
            process.wait_serving()
        yield platform
    finally:
        platform.stop_all()


def measure(bootstrap: str, workdir: Path, replay: Replay) -> dict[str, float]:
    figures: dict[str, float] = {}
    read = readers()
    with running_platform(bootstrap, workdir) as platform:
        targets = {
            s: platform.services[s].grpc_target
            for s in ("chronic", "home", "prevention", "access", "gateway")
        }
        transport = PlatformTransport(
            bootstrap,
            targets,
            platform.auth,
            EXPERIMENT,
            partner_bootstrap=os.environ["EMEUSE_KAFKA_PARTNER_BOOTSTRAP"],
            partner_secrets=workdir / "partners",
        )
        drain = Drain(bootstrap)
        tally = Tally()
        try:
            partners = sorted({e.target for e in replay.live if e.via == "partner"})
            if partners:
                transport.register_partners(partners)
            began = time.monotonic()
            for stage in replay.stages:
                send_and_wait(transport, stage, tally)
            figures["setup_calls"] = sum(len(stage) for stage in replay.stages)
            figures["setup_s"] = time.monotonic() - began
            inputs = {e.target for e in replay.live if e.via == KAFKA}
            starts = ends_of(bootstrap, inputs)
            drain.start()
            # What the setup made the services do is done before the load starts.
            figures["setup_drained"] = float(drain.wait(time.monotonic(), DRAIN_LIMIT_S))
            shares = CpuShares(
                {"broker": broker_pid()}
                | {s: p.process.pid for s, p in platform.services.items() if p.process}
            )
            first = time.monotonic()
            people = People(transport, tally)
            calls = people.start([e for e in replay.live if e.via == GRPC], DRAIN_LIMIT_S)
            records = Tally()
            send_and_wait(transport, [e for e in replay.live if e.via != GRPC], records, people)
            sent = time.monotonic()  # every record taken by the broker
            calls.join()
            figures["calls_asked_again"] = people.asked_again
            figures["calls_done_after_records_s"] = time.monotonic() - sent
            drained = drain.wait(sent, DRAIN_LIMIT_S)
            figures.update(shares.percent())
            last = max(drain.lagging_at.values(), default=sent)
            figures["live_events"] = len(replay.live)
            figures["send_s"] = sent - first
            figures["platform_events_per_s"] = (
                len(replay.live) / max(last - first, 1e-6) if drained else 0.0
            )
            for group, service in GROUPS.items():
                at = drain.lagging_at.get(group)
                figures[f"drain_{service}_s"] = max(0.0, at - sent) if at else 0.0
            figures["slowest_drain_s"] = max(0.0, last - sent) if drained else float("inf")
            on_kafka = sum(1 for e in replay.live if e.via == KAFKA)
            figures["bare_events_per_s"] = asyncio.run(bare_loop(bootstrap, starts, on_kafka))
            figures["ratio_to_bare"] = (
                figures["platform_events_per_s"] / figures["bare_events_per_s"]
            )
            found = dead_letters(bootstrap, {s for t in inputs for s in read.get(t, [])})
            figures.update(account_for_malformed(replay, read, found, records))
            figures.update(failed_sends(tally, records))
            if not drained:
                print(f"  not drained in {DRAIN_LIMIT_S:g} s: {drain.lag}", file=sys.stderr)
        finally:
            drain.stop()
            transport.close()
    return figures


def report(figures: dict[str, float], path: Path) -> int:
    missed = []
    print(f"{'figure':32} {'measured':>12} {'target':>14}")
    for name, value in figures.items():
        target = TARGETS.get(name)
        lower = name.endswith(("_s", "unaccounted", "failed_sends")) and not name.endswith("per_s")
        verdict = shown = ""
        if target is not None:
            met = value <= target if lower else value >= target
            verdict = "met" if met else "MISSED"
            shown = f"{'<=' if lower else '>='} {target:,.2f}"
            if not met:
                missed.append(name)
        print(f"{name:32} {value:>12,.2f} {shown:>14} {verdict}")
    path.write_text(json.dumps({"figures": figures, "targets": TARGETS}, indent=2))
    print(f"results: {path}")
    if missed:
        print(f"bench: simulate targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def stop_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)  # unwinds through `finally`: the services are stopped


def main() -> int:
    bootstrap = os.environ.get("EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:25092")
    if kafka_ready(["--bootstrap", bootstrap, "--timeout", "5"]) != 0:
        print(f"no Kafka broker answers on {bootstrap}: run it with `make bench`")
        return 2
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    created = emeuse("topics", "create", bootstrap=bootstrap)
    if created.returncode != 0:
        print(created.stderr)
        return 2
    out = ROOT / ".local" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    replay = write_load(out / f"simulate-{stamp}.jsonl")
    # The services' logs stay in .local/bench/simulate-<time>/, to look into what it reports.
    figures = measure(bootstrap, out / f"simulate-{stamp}", replay)
    return report(figures, out / f"simulate-{stamp}.json")


if __name__ == "__main__":
    raise SystemExit(main())
