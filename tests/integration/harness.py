"""Running the real services against the real broker, as separate processes, for tests.

Each service gets free ports and its own data folder; it is stopped with SIGTERM and,
should it not stop in time, killed after a grace period.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from emeuse.chronic.v1 import chronic_service_pb2, chronic_service_pb2_grpc
from emeuse.cli.health import health_of
from emeuse.cli.records import describe, describe_unreadable
from emeuse.registry import SERVICES
from emeuse.runtime.auth import add_caller, bearer, read_token
from emeuse.runtime.security import LOOPBACK_PLAINTEXT, SCRAPER, GrpcTls, load_metrics_tls
from emeuse.runtime.unreadable import Unreadable, poll
from tests.integration.events import partition_for

ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_SECONDS = 20


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples in /metrics text that carry these labels."""
    total = 0.0
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if (sample == name or sample.startswith(name + "{")) and all(
            f'{k}="{v}"' in sample for k, v in labels.items()
        ):
            total += float(value)
    return total


def scraper_context(tls: GrpcTls) -> ssl.SSLContext:
    """A client context trusting the service's CA and, under mTLS, presenting Prometheus's
    certificate (scripts/certs.sh makes it beside the CA)."""
    assert tls.ca_file
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    if tls.mutual:
        folder = tls.ca_file.parent
        context.load_cert_chain(folder / f"{SCRAPER}.crt", folder / f"{SCRAPER}.key")
    return context


def scrape(port: int, tls: GrpcTls) -> str:
    """A /metrics page: HTTPS checked against the CA when `tls` is on, plain HTTP otherwise."""
    if tls.on:
        url, context = f"https://127.0.0.1:{port}/metrics", scraper_context(tls)
    else:
        url, context = f"http://127.0.0.1:{port}/metrics", None
    with urllib.request.urlopen(url, timeout=5, context=context) as r:
        return str(r.read().decode())


@contextmanager
def running_prometheus(config: Path, folder: Path) -> Iterator[str]:
    """The real Prometheus (Debian's package) on `config`, checked first with promtool as
    `make up` does; yields its base URL."""
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert binary and promtool, "Debian's prometheus package is not installed: run make install"
    checked = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "prometheus.log").open("wb"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def prometheus_query(base: str, expression: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?query={urllib.request.quote(expression)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return list(json.loads(response.read())["data"]["result"])


def prometheus_up(base: str, jobs: set[str], seconds: float = 60) -> dict[str, str]:
    """`up` of each job once all of `jobs` are scraped and up, or as last seen."""
    deadline = time.monotonic() + seconds
    up: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            up = {r["metric"]["job"]: r["value"][1] for r in prometheus_query(base, "up")}
        except OSError:
            up = {}
        if set(up) == jobs and set(up.values()) == {"1"}:
            break
        time.sleep(1)
    return up


# Ports for the services' gRPC and metrics servers: below Linux's ephemeral range (32768+),
# where the kernel picks the local ports of outgoing connections. A port the kernel handed
# out as free could be taken by a client's connection before the service binds it.
SERVICE_PORTS = range(20000, 32000)
# A run beside others on one machine keeps to its own ports: EMEUSE_TEST_PORTS=FIRST-LAST.
if _ports := os.environ.get("EMEUSE_TEST_PORTS"):
    _first, _, _last = _ports.partition("-")
    SERVICE_PORTS = range(int(_first), int(_last) + 1)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port no one listens on now and not handed out before in this run."""
    for _ in range(1000):
        port = random.choice(SERVICE_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {SERVICE_PORTS}")


@dataclass
class ServiceProcess:
    service: str
    grpc_port: int
    metrics_port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.service}"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_serving(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        clashes = 0
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                if "Address already in use" in self.log_tail() and clashes < 3:
                    # Another run on this machine took a port between our check and the
                    # service's bind: new ports, started again.
                    clashes += 1
                    self._new_ports()
                    self.start()
                    continue
                raise AssertionError(
                    f"{self.service} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if health_of(self.grpc_target) == "SERVING":
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.service} not SERVING after {timeout} s:\n{self.log_tail()}")

    def _new_ports(self) -> None:
        prefix = f"EMEUSE_{self.service.upper()}_"
        self.grpc_port, self.metrics_port = free_port(), free_port()
        self.env[prefix + "GRPC_PORT"] = str(self.grpc_port)
        self.env[prefix + "METRICS_PORT"] = str(self.metrics_port)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop the process; returns its exit status (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def metrics(self) -> str:
        """/metrics as Prometheus reads it: HTTPS when the service serves it so."""
        return scrape(self.metrics_port, load_metrics_tls(self.service, self.env))

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_lines(self) -> list[dict[str, Any]]:
        parsed = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return parsed


@dataclass
class Platform:
    bootstrap: str
    workdir: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    # Settings every service of this platform gets besides the tests' own (the caller's
    # EMEUSE_* variables are not passed on): a cluster's EMEUSE_REPLICATION_FACTOR.
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every service and the tests (as "operator") get a gRPC token of their own.
        self.secrets = self.workdir / "secrets"
        for caller in (*SERVICES, "operator"):
            add_caller(caller, self.secrets / "grpc-callers", self.secrets / f"{caller}.token")
        self.auth = bearer(read_token(self.secrets / "operator.token"))

    def service_env(
        self, service: str, grpc_port: int, metrics_port: int, app_id: str | None
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMEUSE_")}
        prefix = f"EMEUSE_{service.upper()}_"
        env |= {
            "EMEUSE_KAFKA_BOOTSTRAP": self.bootstrap,
            # Loopback tests, plaintext by choice (the services' default is mutual TLS and
            # SASL_SSL); test_encryption.py and test_least_privilege.py turn them on.
            **LOOPBACK_PLAINTEXT,
            "EMEUSE_DATA_DIR": str(self.workdir / "data"),
            "EMEUSE_EXPERIMENT": "integration-tests",
            prefix + "GRPC_PORT": str(grpc_port),
            prefix + "METRICS_PORT": str(metrics_port),
            "EMEUSE_GRPC_CALLERS_FILE": str(self.secrets / "grpc-callers"),
            prefix + "GRPC_TOKEN_FILE": str(self.secrets / f"{service}.token"),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        if app_id:
            env[prefix + "APP_ID"] = app_id
        if "chronic" in self.services:
            env["EMEUSE_ACCESS_CHRONIC_GRPC"] = self.services["chronic"].grpc_target
        # Short booking delays, so a test sees an immediate request flagged in seconds.
        env["EMEUSE_ACCESS_BOOKING_DELAYS"] = (
            "immediate=3,same_day=3600,within_7_days=86400,routine=259200"
        )
        return env

    def new_process(
        self, service: str, name: str | None = None, app_id: str | None = None
    ) -> ServiceProcess:
        grpc_port, metrics_port = free_port(), free_port()
        name = name or service
        return ServiceProcess(
            service,
            grpc_port,
            metrics_port,
            self.service_env(service, grpc_port, metrics_port, app_id),
            self.workdir / f"{name}.log",
        )

    def start(self, service: str) -> ServiceProcess:
        process = self.new_process(service)
        self.services[service] = process
        process.start()
        return process

    def stop_all(self) -> None:
        for process in self.services.values():
            process.stop()


class Client:
    """A service's gRPC API as a tool calls it, with the operator's token:
    `Client(target, AccessServiceStub, auth).GetRequest(request)`."""

    def __init__(self, target: str, stub: Callable[[grpc.Channel], Any], auth: Any) -> None:
        self.target, self.stub, self.auth = target, stub, auth

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(request: Any, timeout: float = 20) -> Any:
            with grpc.insecure_channel(self.target) as channel:
                return getattr(self.stub(channel), method)(
                    request, timeout=timeout, metadata=self.auth
                )

        return call


class Bus:
    """Plain kafka-python access to the test broker, for producing inputs and reading outputs."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.producer = KafkaProducer(bootstrap_servers=bootstrap)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        partition: int | None = None,
    ) -> tuple[int, int]:
        """Send and wait for the broker; a chosen partition plays a producer with another
        partitioner. Returns (partition, offset)."""
        if partition is None:
            partition = partition_for(topic, key, value)
        future = self.producer.send(
            topic, key=key, value=value, headers=headers, partition=partition
        )
        metadata = future.get(timeout=15)
        return metadata.partition, metadata.offset

    def _raw_polls_from_beginning(self, topic: str) -> Iterator[list[ConsumerRecord]]:
        """The topic's records as stored, from the beginning, one list per poll (possibly
        empty); those kafka-python cannot decode are left out."""
        for records, _ in self._polls_with_unreadable(topic):
            yield records

    def _polls_with_unreadable(
        self, topic: str
    ) -> Iterator[tuple[list[ConsumerRecord], list[Unreadable]]]:
        # read_committed, as every consumer of the platform: what an aborted transaction wrote
        # is never seen.
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        try:
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            while True:
                polled, unreadable = poll(consumer, self.bootstrap, timeout_ms=300)
                yield [r for records in polled.values() for r in records], unreadable
        finally:
            consumer.close()

    def _polls_from_beginning(self, topic: str) -> Iterator[list[dict[str, Any]]]:
        """The topic's records from the beginning, described, one list per poll; one the
        client cannot decode is described by its place and an "error"."""
        for batch, unreadable in self._polls_with_unreadable(topic):
            yield [
                describe(r.topic, r.partition, r.offset, r.key, r.value, r.headers) for r in batch
            ] + [describe_unreadable(u) for u in unreadable]

    def wait_for(
        self,
        topic: str,
        matches: Callable[[dict[str, Any]], bool],
        timeout: float = 45,
        count: int = 1,
    ) -> list[dict[str, Any]]:
        """Records of `topic` (from the beginning) that match, once `count` are there."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        polls = self._polls_from_beginning(topic)
        try:
            for batch in polls:
                found.extend(shown for shown in batch if matches(shown))
                if len(found) >= count:
                    return found
                if time.monotonic() >= deadline:
                    break
        finally:
            polls.close()
        raise AssertionError(
            f"{len(found)} of {count} expected records on {topic} after {timeout} s"
        )

    def all_records(self, topic: str, idle_seconds: float = 2.0) -> list[dict[str, Any]]:
        """Every record on the topic now, read until nothing new arrives for idle_seconds."""
        found: list[dict[str, Any]] = []
        last = time.monotonic()
        polls = self._polls_from_beginning(topic)
        try:
            for batch in polls:
                if batch:
                    found.extend(batch)
                    last = time.monotonic()
                elif time.monotonic() - last >= idle_seconds:
                    return found
        finally:
            polls.close()
        return found

    def replay(self, topic: str, key: str) -> None:
        """Send the first record of `topic` with this key again, byte for byte, to its
        partition: what a consumer sees after a rebalance or a crash (at-least-once)."""
        deadline = time.monotonic() + 15
        polls = self._raw_polls_from_beginning(topic)
        try:
            for batch in polls:
                for r in batch:
                    if r.key == key.encode():
                        self.send(topic, r.key, r.value, list(r.headers), r.partition)
                        return
                if time.monotonic() >= deadline:
                    break
        finally:
            polls.close()
        raise AssertionError(f"no record keyed {key} on {topic}")

    def close(self) -> None:
        self.producer.close(timeout=5)


def emeuse(*args: str, bootstrap: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `emeuse` command as a user would."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "emeuse"), *args, "--bootstrap", bootstrap],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def wait_for_care_plan(
    target: str, patient: str, auth: tuple[tuple[str, str], ...], timeout: float = 45
) -> None:
    """Wait until the chronic service (any instance) holds the patient's care plan.

    Plans and readings are on two topics: nothing orders one after the other, so a test
    that needs the plan applied to its readings waits for it, as a prescriber's plan
    precedes the readings in real life.
    """
    request = chronic_service_pb2.GetPatientSummaryRequest(patient_pseudonym=patient)
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = chronic_service_pb2_grpc.ChronicServiceStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.GetPatientSummary(request, timeout=5, metadata=auth).has_care_plan:
                    return
            except grpc.RpcError:
                pass  # a rebalance in progress; ask again
            time.sleep(0.2)
    raise AssertionError(f"care plan not recorded by {target} after {timeout} s")
