"""Reading with kafka-python past the records it cannot decode, as the kernel does.

kafka-python 3.0 decodes record header keys as UTF-8 while it unpacks a fetch
(DefaultRecordBatch._read_msg): a record whose header key is not UTF-8 makes
KafkaConsumer.poll() raise CorruptRecordError ("Found invalid record structure:
UnicodeDecodeError ..."), naming neither the partition nor the offset, and the consumer
never moves past it. kafka-python has no hook for this (only key and value
deserializers), so, like the kernel with aiokafka (kernel/raw_records.py), the record is
read raw where the consumer stopped, reported as Unreadable with its place, and stepped
over: no private name of the client is touched. Delete this when kafka-python keeps header
keys as bytes or stops failing on them.

For synchronous readers only (the CLI, test helpers, the chaos checker): the raw read runs
its own event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CorruptRecordError

from emeuse.kernel.raw_records import RawRecord, read_raw_record

# What poll() raises for a record it cannot unpack (UnicodeDecodeError is caught too, in
# case a version stops wrapping it).
UNREADABLE_ERRORS = (CorruptRecordError, UnicodeDecodeError)
# Past the consumer's position, how many records of one partition are read raw to find the
# unreadable one when it is not the first (kafka-python unpacks lazily: it is the first).
LOOKAHEAD = 500
# Raw reads in flight at once (each its own connection), when many partitions wait.
RAW_READS_AT_ONCE = 16

Polled = dict[TopicPartition, list[ConsumerRecord]]
RawReader = Callable[..., Coroutine[Any, Any, RawRecord | None]]


@dataclass(frozen=True)
class Unreadable:
    """A record the client could not decode. Shown (str) by where it is and why, never its
    content; `raw` holds what could be read of it, for a caller that must look inside."""

    topic: str
    partition: int
    offset: int
    reason: str
    raw: RawRecord | None = None

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason}"


def poll(
    consumer: KafkaConsumer,
    bootstrap: str | Sequence[str],
    timeout_ms: int = 500,
    max_records: int | None = None,
    *,
    read_raw: RawReader = read_raw_record,
) -> tuple[Polled, list[Unreadable]]:
    """consumer.poll(), except that a record it cannot decode is found, stepped over and
    returned as Unreadable instead of raising. Records read raw on the way to it (rare) are
    in the first part, as ConsumerRecords without the consumer's deserializers."""
    limit = {} if max_records is None else {"max_records": max_records}
    try:
        return consumer.poll(timeout_ms=timeout_ms, **limit), []
    except UNREADABLE_ERRORS as exc:
        return step_over(consumer, bootstrap, exc, read_raw=read_raw)


def step_over(
    consumer: KafkaConsumer,
    bootstrap: str | Sequence[str],
    exc: BaseException,
    *,
    read_raw: RawReader = read_raw_record,
) -> tuple[Polled, list[Unreadable]]:
    """After poll() raised `exc`: each assigned partition is read raw from its position
    until its first unreadable record; the consumer is moved past each one found."""
    isolation = getattr(consumer, "config", {}).get("isolation_level", "read_uncommitted")
    servers = [bootstrap] if isinstance(bootstrap, str) else list(bootstrap)
    paused = consumer.paused()
    assigned = [tp for tp in sorted(consumer.assignment()) if tp not in paused]
    ends = consumer.end_offsets(assigned) if assigned else {}
    positions = {tp: consumer.position(tp) for tp in assigned}
    waiting = [tp for tp in assigned if (positions[tp] or 0) < ends.get(tp, 0)]
    found: list[Unreadable] = []
    # The record at each position, read side by side: kafka-python unpacks records one by
    # one, so where it stopped, the record is the unreadable one.
    firsts = asyncio.run(
        _read_each(read_raw, servers, [(tp, positions[tp] or 0) for tp in waiting], isolation)
    )
    for tp, raw in zip(waiting, firsts, strict=True):
        problem = None if raw is None else record_problem(raw)
        if raw is not None and problem is not None:
            found.append(Unreadable(tp.topic, tp.partition, raw.offset, problem, raw))
            consumer.seek(tp, raw.offset + 1)
    if found:
        return {}, found
    # Else further on, one partition at a time (should a version unpack a batch at once).
    polled: Polled = {}
    for tp in waiting:
        readable, unreadable = _read_until_unreadable(
            servers, tp, positions[tp] or 0, ends[tp], isolation, read_raw
        )
        if unreadable is not None:
            found.append(unreadable)
            if readable:
                polled[tp] = readable
            consumer.seek(tp, unreadable.offset + 1)
    if found:
        return polled, found
    # Nothing unreadable raw: the client failed for another reason; it is not hidden.
    raise exc


async def _read_each(
    read_raw: RawReader,
    servers: list[str],
    places: list[tuple[TopicPartition, int]],
    isolation: str,
) -> list[RawRecord | None]:
    at_once = asyncio.Semaphore(RAW_READS_AT_ONCE)

    async def read(tp: TopicPartition, offset: int) -> RawRecord | None:
        async with at_once:
            return await read_raw(
                servers, tp.topic, tp.partition, offset, isolation_level=isolation
            )

    return list(await asyncio.gather(*(read(tp, offset) for tp, offset in places)))


def _read_until_unreadable(
    servers: list[str],
    tp: TopicPartition,
    offset: int,
    end: int,
    isolation: str,
    read_raw: RawReader,
) -> tuple[list[ConsumerRecord], Unreadable | None]:
    readable: list[ConsumerRecord] = []
    for _ in range(LOOKAHEAD):
        if offset >= end:
            break
        raw = asyncio.run(
            read_raw(servers, tp.topic, tp.partition, offset, isolation_level=isolation)
        )
        if raw is None:
            break
        problem = record_problem(raw)
        if problem is not None:
            return readable, Unreadable(tp.topic, tp.partition, raw.offset, problem, raw)
        readable.append(_as_consumer_record(raw))
        offset = raw.offset + 1
    return [], None


def record_problem(raw: RawRecord) -> str | None:
    """Why a client cannot read `raw` (a batch it cannot parse, a header key not UTF-8);
    None when nothing in it would stop one."""
    if raw.error is not None:
        return f"record batch not readable: {raw.error}"
    for name, _ in raw.headers:
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            return f"header key {name[:32]!r} is not UTF-8"
    return None


def _as_consumer_record(raw: RawRecord) -> ConsumerRecord:
    headers: list[tuple[str, Any]] = [(name.decode(), value) for name, value in raw.headers]
    return ConsumerRecord(
        topic=raw.topic,
        partition=raw.partition,
        leader_epoch=-1,
        offset=raw.offset,
        timestamp=raw.timestamp_ms,
        timestamp_type=0,
        key=raw.key,
        value=raw.value,
        headers=headers,
        checksum=None,
        serialized_key_size=-1 if raw.key is None else len(raw.key),
        serialized_value_size=-1 if raw.value is None else len(raw.value),
        serialized_header_size=-1,
    )
