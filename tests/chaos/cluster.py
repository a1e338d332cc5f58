"""The processes a round runs and hurts: instances of a service, and (optionally) the broker.

An instance keeps its name, gRPC port and data folder for the whole round, so a restarted one
comes back as the same static group member (group.instance.id) with its store on disk. The
cluster also plays the supervisor: an instance that exits on its own (a partition task failed,
run.py exits 1 for its supervisor) is started again, and counted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient

from emeuse.cli.health import health_of
from tests.chaos.kafka_io import QUICK_RECONNECT
from tests.integration.harness import ROOT, Platform, ServiceProcess, free_port

KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
CLUSTER_SH = ROOT / "deploy" / "kafka" / "cluster.sh"


@dataclass
class Instance:
    name: str
    process: ServiceProcess
    # Set while the round means it to be down (killed, stopped, paused): not a crash.
    held: bool = False
    retired: bool = False
    starts: int = 0
    unexpected_exits: list[int | None] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        p = self.process.process
        return p.pid if p is not None and p.poll() is None else None

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def start(self) -> None:
        self.starts += 1
        self.process.start()

    def serving(self) -> bool:
        return health_of(self.process.grpc_target) == "SERVING"


class Cluster:
    def __init__(
        self,
        platform: Platform,
        service: str,
        app_id: str,
        port: Callable[[], int] = free_port,
    ) -> None:
        self.platform = platform
        self.port = port
        self.service = service
        self.app_id = app_id
        self.instances: dict[str, Instance] = {}
        self._counter = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    def add(self) -> Instance:
        """A new member: its own name, ports, data folder and static member id."""
        with self._lock:
            self._counter += 1
            name = f"{self.service}-{self._counter}"
            grpc_port, metrics_port = self.port(), self.port()
            env = self.platform.service_env(self.service, grpc_port, metrics_port, self.app_id)
            prefix = f"EMEUSE_{self.service.upper()}_"
            env["EMEUSE_DATA_DIR"] = str(self.platform.workdir / name / "data")
            env[prefix + "INSTANCE_ID"] = f"{self.app_id}-{name}"
            log = self.platform.workdir / f"{name}.log"
            instance = Instance(
                name, ServiceProcess(self.service, grpc_port, metrics_port, env, log)
            )
            self.instances[name] = instance
        return instance

    def live(self) -> list[Instance]:
        return [i for i in self.instances.values() if not i.retired and not i.held]

    def wait_serving(self, instances: list[Instance], timeout: float = 120) -> float:
        """Seconds until every one answers SERVING (its first assignment is open). One that
        exits meanwhile is started again by the supervisor, and waited for."""
        started = time.monotonic()
        waiting = list(instances)
        while waiting:
            waiting = [i for i in waiting if not i.serving()]
            if not waiting:
                break
            if time.monotonic() - started > timeout:
                tails = "\n".join(f"{i.name}:\n{i.process.log_tail(15)}" for i in waiting)
                raise AssertionError(f"not SERVING after {timeout} s:\n{tails}")
            time.sleep(0.3)
        return time.monotonic() - started

    # -- the supervisor ---------------------------------------------------------------------

    def supervise(self) -> None:
        self._supervisor = threading.Thread(target=self._watch, name="chaos-supervisor")
        self._supervisor.daemon = True
        self._supervisor.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for instance in self.instances.values():
                    process = instance.process.process
                    if instance.held or instance.retired or process is None:
                        continue
                    if process.poll() is not None:
                        instance.unexpected_exits.append(process.returncode)
                        instance.start()

    def stop_all(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        for instance in self.instances.values():
            instance.held = True
            process = instance.process.process
            if process is not None and process.poll() is None:
                # A paused process never sees SIGTERM: let it go on first.
                os.kill(process.pid, signal.SIGCONT)
            instance.process.stop()

    def hold(self, instance: Instance, held: bool) -> None:
        with self._lock:
            instance.held = held


class Broker:
    """The broker of this round, through deploy/kafka/kafka.sh (KAFKA_HOME and ports from the
    environment, as scripts/chaos.sh sets them)."""

    # How long the killed broker stays down before `up`.
    down_s = 3.0

    def kill(self) -> str:
        """kill -9 the broker; says which."""
        target = f"broker pid {self.pid()}"
        subprocess.run([str(KAFKA_SH), "kill"], check=True, capture_output=True, timeout=30)
        return target

    def up(self) -> None:
        subprocess.run([str(KAFKA_SH), "up"], check=True, capture_output=True, timeout=180)

    def pid(self) -> int | None:
        done = subprocess.run([str(KAFKA_SH), "pid"], capture_output=True, text=True, timeout=10)
        return int(done.stdout) if done.returncode == 0 and done.stdout.strip() else None


class KafkaCluster(Broker):
    """deploy/kafka/cluster.sh's three nodes (KAFKA_HOME, KAFKA_CLUSTER_PORT in `env`). The
    broker fault kills -9 the node leading most partitions of `topic` (the stream's input) and
    restarts it on its data after down_s: longer than the controller takes to fence it (9 s) and
    move its leaders, so the services must go on without it."""

    down_s = 20.0

    def __init__(self, env: dict[str, str], topic: str) -> None:
        self.env = env
        self.topic = topic
        self.killed: int | None = None
        lines = self._sh("env").stdout.splitlines()
        exports = dict(
            word.split("=", 1) for line in lines for word in line.split()[1:] if "=" in word
        )
        self.bootstrap = exports["EMEUSE_KAFKA_BOOTSTRAP"]
        self.replication_factor = int(exports["EMEUSE_REPLICATION_FACTOR"])

    def _sh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLUSTER_SH), *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> None:
        self._sh("fresh", timeout=300)

    def stop(self) -> None:
        self._sh("down", timeout=120)

    def describe(self, topics: list[str]) -> dict[str, list[dict]]:
        """Each topic's partitions as the cluster's metadata has them (leader_id,
        replica_nodes, isr_nodes)."""
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=10_000, **QUICK_RECONNECT
        )
        try:
            return {t["name"]: t["partitions"] for t in admin.describe_topics(topics)}
        finally:
            admin.close()

    def leader_of_most(self) -> int:
        leaders = Counter(p["leader_id"] for p in self.describe([self.topic])[self.topic])
        return min(leaders, key=lambda node: (-leaders[node], node))

    def kill(self) -> str:
        node = self.killed = self.leader_of_most()
        led = sum(p["leader_id"] == node for p in self.describe([self.topic])[self.topic])
        pid = self._sh("node", str(node), "pid").stdout.strip()
        self._sh("node", str(node), "kill")
        return f"node {node} (pid {pid}, leader of {led} partitions of {self.topic})"

    def up(self) -> None:
        assert self.killed is not None
        self._sh("node", str(self.killed), "up", timeout=180)

    def pid(self) -> int | None:
        node = self.killed or 1
        done = subprocess.run(
            [str(CLUSTER_SH), "node", str(node), "pid"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return int(done.stdout) if done.returncode == 0 and done.stdout.strip() else None
