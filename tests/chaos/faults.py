"""The faults: what each does to the cluster or the broker, and what it leaves to measure.

Every fault runs to its end before the next (one at a time, every few seconds): an instance
killed or stopped is started again with the same identity, a paused one is let go on after
the session timeout, one that leaves for good is replaced by a newcomer, a killed broker is
restarted on its data. Poison records are written to the stream's topic.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import TopicPartition

from emeuse.kernel.engine import SESSION_TIMEOUT_MS
from emeuse.registry import TopicSpec
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.pseudonym import is_pseudonym, random_pseudonym
from tests.chaos.cluster import Broker, Cluster, Instance
from tests.chaos.poison import send_poison_record
from tests.integration.events import headers_for

# Paused past the session timeout, so the group gives its partitions to the others.
PAUSE_S = SESSION_TIMEOUT_MS / 1000 + 4
# Near the broker's message.max.bytes (1 MiB + 12 bytes): the batch around it fits.
BIG_VALUE_BYTES = 1_040_000

INSTANCE_FAULTS = ("kill-9", "sigterm", "sigstop", "leave-join")
POISON_FAULTS = ("poison-header", "poison-value", "poison-1mb")
BROKER_FAULTS = ("broker-kill-9",)


@dataclass
class Fault:
    kind: str
    target: str
    at: float  # time.monotonic() when it hit
    wall: str
    detail: str = ""
    # Seconds from the hit until the restarted/new instance (or the broker) answered again.
    back_s: float | None = None
    poison: tuple[TopicPartition, int] | None = None
    recovery_s: float | None = None
    notes: list[str] = field(default_factory=list)


class Faults:
    def __init__(
        self,
        cluster: Cluster,
        broker: Broker | None,
        bootstrap: str,
        stream_topic: TopicSpec,
        keys: list[str],
        rng: random.Random,
    ) -> None:
        self.cluster = cluster
        self.broker = broker
        self.bootstrap = bootstrap
        self.topic = stream_topic
        self.keys = keys
        self.rng = rng

    def kinds(self) -> tuple[str, ...]:
        return INSTANCE_FAULTS + POISON_FAULTS + (BROKER_FAULTS if self.broker else ())

    def inject(self, kind: str) -> Fault:
        action: Callable[[Fault], None] = getattr(self, "_" + kind.replace("-", "_"))
        fault = Fault(kind, "", time.monotonic(), time.strftime("%H:%M:%S"))
        action(fault)
        return fault

    # -- instances --------------------------------------------------------------------------

    def _victim(self) -> Instance:
        live = [i for i in self.cluster.live() if i.pid is not None]
        return self.rng.choice(live)

    def _restart(self, instance: Instance, fault: Fault) -> None:
        instance.start()
        self.cluster.hold(instance, False)
        self._wait_back(instance, fault)

    def _wait_back(self, instance: Instance, fault: Fault) -> None:
        try:
            self.cluster.wait_serving([instance], timeout=120)
            fault.back_s = time.monotonic() - fault.at
        except AssertionError as exc:
            fault.notes.append(f"{instance.name} not serving again: {str(exc)[:200]}")

    def _kill_9(self, fault: Fault) -> None:
        victim = self._victim()
        fault.target = victim.name
        self.cluster.hold(victim, True)
        fault.at = time.monotonic()
        victim.process.stop(signal.SIGKILL)
        self._restart(victim, fault)

    def _sigterm(self, fault: Fault) -> None:
        victim = self._victim()
        fault.target = victim.name
        self.cluster.hold(victim, True)
        fault.at = time.monotonic()
        status = victim.process.stop(signal.SIGTERM)
        fault.detail = f"exit {status}" if status is not None else "killed after 20 s"
        self._restart(victim, fault)

    def _sigstop(self, fault: Fault) -> None:
        victim = self._victim()
        fault.target = victim.name
        pid = victim.pid
        assert pid is not None
        self.cluster.hold(victim, True)
        fault.at = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(PAUSE_S)
        os.kill(pid, signal.SIGCONT)
        self.cluster.hold(victim, False)
        fault.detail = f"paused {PAUSE_S:.0f} s"

    def _leave_join(self, fault: Fault) -> None:
        leaving = self._victim()
        self.cluster.hold(leaving, True)
        leaving.retired = True
        fault.at = time.monotonic()
        leaving.process.stop(signal.SIGTERM)
        newcomer = self.cluster.add()
        fault.target = f"{leaving.name} -> {newcomer.name}"
        newcomer.start()
        self._wait_back(newcomer, fault)

    # -- the broker ---------------------------------------------------------------------------

    def _broker_kill_9(self, fault: Fault) -> None:
        assert self.broker is not None
        fault.at = time.monotonic()
        fault.target = self.broker.kill()
        time.sleep(self.broker.down_s)
        self.broker.up()
        fault.back_s = time.monotonic() - fault.at
        fault.detail = f"down {self.broker.down_s:.0f} s, then restarted on its data"

    # -- poison records -----------------------------------------------------------------------

    def _poison(self, fault: Fault, value: bytes, extra: list[tuple[bytes, bytes]]) -> None:
        key = self.rng.choice(self.keys)
        partition = expected_partition(key.encode(), self.topic.partitions)
        # Keyed as the stream is; the envelope names a pseudonym even where the key is a
        # territory (access), so only the fault's own bytes are wrong.
        subject = key if is_pseudonym(key) else random_pseudonym()
        headers = [(k.encode(), v) for k, v in headers_for(self.topic, subject)] + extra
        fault.at = time.monotonic()
        offset = send_poison_record(
            self.bootstrap,
            self.topic.name,
            partition,
            key=key.encode(),
            value=value,
            headers=headers,
        )
        fault.target = f"{self.topic.name}[{partition}]@{offset}"
        fault.poison = (TopicPartition(self.topic.name, partition), offset)

    def _poison_header(self, fault: Fault) -> None:
        # aiokafka decodes header keys as UTF-8: this one fails inside the client's fetch.
        self._poison(fault, b"", [(b"\xff\xfe-not-utf8", b"x")])
        fault.detail = "header key not UTF-8"

    def _poison_value(self, fault: Fault) -> None:
        # 'n' is field 13 with wire type 6, which does not exist: no protobuf parses it.
        self._poison(fault, b"not a protobuf \xff\x00", [])
        fault.detail = "value not protobuf"

    def _poison_1mb(self, fault: Fault) -> None:
        self._poison(fault, b"n" + self.rng.randbytes(BIG_VALUE_BYTES - 1), [])
        fault.detail = f"{BIG_VALUE_BYTES:,} byte value, not protobuf"
