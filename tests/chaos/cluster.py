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
from dataclasses import dataclass, field
from pathlib import Path

from emeuse.cli.health import health_of
from tests.integration.harness import ROOT, Platform, ServiceProcess, free_port

KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"


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
    def __init__(self, platform: Platform, service: str, app_id: str) -> None:
        self.platform = platform
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
            grpc_port, metrics_port = free_port(), free_port()
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

    def kill(self) -> None:
        subprocess.run([str(KAFKA_SH), "kill"], check=True, capture_output=True, timeout=30)

    def up(self) -> None:
        subprocess.run([str(KAFKA_SH), "up"], check=True, capture_output=True, timeout=180)

    def pid(self) -> int | None:
        done = subprocess.run([str(KAFKA_SH), "pid"], capture_output=True, text=True, timeout=10)
        return int(done.stdout) if done.returncode == 0 and done.stdout.strip() else None
