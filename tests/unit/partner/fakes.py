"""Fakes of the Kafka clients the SDK uses, and records as the feed carries them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from google.protobuf.message import Message

from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import for_type
from emeuse.runtime import envelope as env
from emeuse.runtime.pseudonym import random_pseudonym


@dataclass
class Sent:
    topic: str
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class FakeProducer:
    sent: list[Sent] = field(default_factory=list)
    fail: bool = False

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.sent.append(Sent(topic, value, key, list(headers or [])))


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class FakeConsumer:
    """Hands out the batches it was given, then empty ones; records commits."""

    def __init__(self, batches: list[dict[TopicPartition, list[FakeRecord]]]) -> None:
        self.batches = list(batches)
        self.commits: list[dict[TopicPartition, int]] = []
        self.highwaters: dict[TopicPartition, int] = {}
        self.drained = asyncio.Event()

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Any]]:
        if not self.batches:
            self.drained.set()
            await asyncio.sleep(0.01)
            return {}
        batch = self.batches.pop(0)
        for tp, records in batch.items():
            self.highwaters[tp] = max(self.highwaters.get(tp, 0), records[-1].offset + 1)
        return batch

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        self.commits.append(dict(offsets or {}))

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters.get(partition)

    @property
    def last_committed(self) -> dict[TopicPartition, int]:
        merged: dict[TopicPartition, int] = {}
        for commit in self.commits:
            merged.update(commit)
        return merged


def feed_record(
    message: Message,
    *,
    topic: str = "emeuse-partner.glucoflow.feed",
    partition: int = 0,
    offset: int = 0,
    subject: str | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> FakeRecord:
    """A record as the consent gateway republishes it: the platform's envelope headers."""
    spec = for_type(message.DESCRIPTOR.full_name)[0]
    subject = subject if subject is not None else getattr(message, spec.subject_field, "")
    envelope = env.new_envelope(
        event_type=spec.type_name,
        source="emeuse/chronic",
        subject_pseudonym=subject,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="pilot-2027",
        schema_version=spec.schema_version,
        occurred_at=datetime.now(UTC),
    )
    return FakeRecord(
        topic,
        partition,
        offset,
        subject.encode() if subject else None,
        message.SerializeToString(),
        tuple(headers if headers is not None else env.to_headers(envelope)),
    )


def patient() -> str:
    return random_pseudonym()


class PoisonedLog:
    """A consumer over partitions as lists of records, some of which (`poison`) its client
    cannot unpack: getmany() raises on them as aiokafka does, UnicodeDecodeError, after
    moving on the partitions it had drained before (those records are lost to the caller)."""

    def __init__(
        self,
        partitions: dict[TopicPartition, list[FakeRecord]],
        poison: set[tuple[TopicPartition, int]],
        error: Exception | None = None,
    ) -> None:
        self.log = partitions
        self.poison = poison
        self.error = error or UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        self.positions = {tp: 0 for tp in partitions}
        self.commits: list[dict[TopicPartition, int]] = []
        self.drained = asyncio.Event()

    def _take(self, tp: TopicPartition, limit: int | None) -> list[FakeRecord]:
        taken: list[FakeRecord] = []
        for record in self.log[tp][self.positions[tp] :]:
            if (tp, record.offset) in self.poison:
                raise self.error
            taken.append(record)
            if limit is not None and len(taken) >= limit:
                break
        if taken:
            self.positions[tp] = taken[-1].offset + 1
        return taken

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Any]]:
        got = {}
        for tp in partitions or sorted(self.log):
            records = self._take(tp, max_records)
            if records:
                got[tp] = records
        if not got and not partitions:
            self.drained.set()
            await asyncio.sleep(0.01)
        return got

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        self.commits.append(dict(offsets or {}))

    def highwater(self, partition: TopicPartition) -> int | None:
        return len(self.log[partition])

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.positions[partition] = offset

    async def position(self, partition: TopicPartition) -> int:
        return self.positions[partition]

    async def committed(self, partition: TopicPartition) -> int | None:
        found = [c[partition] for c in self.commits if partition in c]
        return found[-1] if found else None

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in partitions}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.log[tp]) for tp in partitions}

    @property
    def last_committed(self) -> dict[TopicPartition, int]:
        merged: dict[TopicPartition, int] = {}
        for commit in self.commits:
            merged.update(commit)
        return merged
