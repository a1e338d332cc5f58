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
