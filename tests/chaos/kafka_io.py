"""What the fault suite asks the broker: committed and end offsets, produced records, outputs.

Plain kafka-python, outside the services: the checker must see the bus as any other reader
does (read_committed), never through the code under test.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import OffsetSpec
from kafka.protocol.consumer.offsets import IsolationLevel
from kafka.structs import OffsetAndMetadata

from emeuse.registry import TopicSpec
from emeuse.runtime import envelope as env
from emeuse.runtime.unreadable import Unreadable, poll
from tests.integration.events import partition_for

Offsets = dict[TopicPartition, int]
# kafka-python waits up to 30 s between reconnect attempts (reconnect_backoff_max_ms) and
# 30 s for a new client's first connection: after the broker's kill -9 the checker's own
# clients would come back up to 30 s after the broker, and the stream stall that long, which
# a round then counted as the services' recovery time (or, with the broker's kill near the
# end of a round, saw none). Every client of the suite tries again within a second.
QUICK_RECONNECT: dict[str, Any] = {"reconnect_backoff_max_ms": 1000}


def partitions_of(specs: Iterable[TopicSpec]) -> list[TopicPartition]:
    return [TopicPartition(spec.name, p) for spec in specs for p in range(spec.partitions)]


class Offsetting:
    """Committed offsets of a group and end offsets (read_committed) of topics; one admin
    client, made again after a failure (the broker may have been killed meanwhile)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                request_timeout_ms=5000,
                # Not 30 s: the lock is held meanwhile, and a sample is worth less than that.
                bootstrap_timeout_ms=3000,
                client_id="emeuse-chaos",
                **QUICK_RECONNECT,
            )
        return self._admin

    def _reset(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
        self._admin = None

    def _call(self, ask: Callable[[KafkaAdminClient], Any], retry_s: float) -> Any:
        """One admin call, asked again for up to retry_s: fresh topics and a restarted broker
        take a moment to have leaders and a group coordinator."""
        deadline = time.monotonic() + retry_s
        while True:
            with self._lock:
                try:
                    return ask(self._client())
                except Exception:
                    self._reset()
                    if time.monotonic() >= deadline:
                        raise
            time.sleep(0.5)

    def ends(self, tps: list[TopicPartition], retry_s: float = 30) -> Offsets:
        found = self._call(
            lambda admin: admin.list_partition_offsets(
                dict.fromkeys(tps, OffsetSpec.LATEST),
                isolation_level=IsolationLevel.READ_COMMITTED,
                timeout_ms=5000,
            ),
            retry_s,
        )
        return {tp: int(getattr(info, "offset", info)) for tp, info in found.items()}

    def committed(self, group: str, tps: list[TopicPartition], retry_s: float = 30) -> Offsets:
        """The group's committed offset of each partition (0 when it never committed)."""
        found = self._call(lambda admin: admin.list_group_offsets({group: tps})[group], retry_s)
        return {tp: max(0, found[tp].offset) if tp in found else 0 for tp in tps}

    def commit(self, group: str, offsets: Offsets) -> None:
        """Start a new group at these offsets (it must have no member yet)."""
        self._call(
            lambda admin: admin.alter_group_offsets(
                group, {tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}
            ),
            60,
        )

    def close(self) -> None:
        with self._lock:
            self._reset()


@dataclass
class Sent:
    """Where each produced record landed: (topic, partition) -> offsets."""

    offsets: dict[TopicPartition, set[int]] = field(default_factory=dict)
    failed: int = 0

    def add(self, tp: TopicPartition, offset: int) -> None:
        self.offsets.setdefault(tp, set()).add(offset)

    def contains(self, topic: str, partition: int, offset: int) -> bool:
        return offset in self.offsets.get(TopicPartition(topic, partition), ())

    def count(self) -> int:
        return sum(len(offsets) for offsets in self.offsets.values())


class Producer:
    """Idempotent, acks=all, retried for two minutes: a broker killed and restarted loses no
    input and writes none twice, so what the service is given is exactly the workload."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            delivery_timeout_ms=120_000,
            request_timeout_ms=10_000,
            linger_ms=5,
            client_id="emeuse-chaos-workload",
            **QUICK_RECONNECT,
        )
        self.sent = Sent()
        self._lock = threading.Lock()
        self._pending: list[Any] = []

    def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        partition = partition_for(topic, key, value)
        future = self.producer.send(
            topic, key=key, value=value, headers=headers, partition=partition
        )
        self._pending.append(future)
        if len(self._pending) >= 500:
            self._settle()

    def _settle(self) -> None:
        for future in self._pending:
            try:
                metadata = future.get(timeout=180)
            except Exception:
                self.sent.failed += 1
                continue
            with self._lock:
                self.sent.add(TopicPartition(metadata.topic, metadata.partition), metadata.offset)
        self._pending.clear()

    def flush(self) -> None:
        self.producer.flush(timeout=180)
        self._settle()

    def close(self) -> None:
        self.flush()
        self.producer.close(timeout=10)


@dataclass(frozen=True)
class Output:
    """One record of an output topic, as a read_committed reader sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    event_id: str
    message: Message


def read_outputs(
    bootstrap: str,
    specs: list[TopicSpec],
    start: Offsets,
    timeout: float = 60,
    unreadable: list[Unreadable] | None = None,
) -> dict[str, list[Output]]:
    """Every committed record of `specs` from `start` to the topics' ends now, decoded. An
    output the client cannot decode is added to `unreadable` (by its place) and passed."""
    tps = partitions_of(specs)
    by_name = {spec.name: spec for spec in specs}
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=2 * 1024 * 1024,
        client_id="emeuse-chaos-checker",
        **QUICK_RECONNECT,
    )
    found: dict[str, list[Output]] = {spec.name: [] for spec in specs}
    try:
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp, 0))
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"outputs not read to their end after {timeout} s")
            polled, bad = poll(consumer, bootstrap, timeout_ms=500)
            if unreadable is not None:
                unreadable += [
                    u for u in bad if u.offset < ends[TopicPartition(u.topic, u.partition)]
                ]
            for records in polled.values():
                for r in records:
                    if r.offset >= ends[TopicPartition(r.topic, r.partition)]:
                        continue
                    spec = by_name[r.topic]
                    headers = env.header_map(r.headers)
                    found[r.topic].append(
                        Output(
                            r.topic,
                            r.partition,
                            r.offset,
                            r.key,
                            headers.get(env.H_ID, b"").decode(errors="replace"),
                            spec.message.FromString(r.value),
                        )
                    )
    finally:
        consumer.close()
    return found


def records_after(bootstrap: str, offsets: Offsets, ends: Offsets) -> dict[TopicPartition, int]:
    """Data records (read_committed) at or after `offsets` and before `ends`: inputs a group
    never processed. Control records of transactions are not counted; a poison record that
    kafka-python cannot read (a header key not UTF-8) is counted, and stepped over."""
    left = {tp: o for tp, o in offsets.items() if o < ends.get(tp, 0)}
    if not left:
        return {}
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=2 * 1024 * 1024,
        client_id="emeuse-chaos-checker",
        **QUICK_RECONNECT,
    )
    counts = dict.fromkeys(left, 0)
    try:
        consumer.assign(list(left))
        for tp, offset in left.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in left):
            polled, unreadable = poll(consumer, bootstrap, timeout_ms=500)
            for u in unreadable:
                tp = TopicPartition(u.topic, u.partition)
                counts[tp] += u.offset < ends[tp]
            for tp, records in polled.items():
                counts[tp] += sum(1 for r in records if r.offset < ends[tp])
    finally:
        consumer.close()
    return {tp: n for tp, n in counts.items() if n}
