"""The consume loop: fetch, dispatch one record at a time, commit what was handled.

At-least-once: an offset is committed only after its record was handled, skipped or
dead-lettered. A crash or a rebalance may deliver a record again; handlers dedupe by
`event.event_id`. Written against the few consumer methods it uses, so tests drive it
with a fake consumer.

No record stops a partition: one the client cannot unpack (aiokafka decodes header keys as
UTF-8 and checks batch CRCs inside `getmany`, see kernel/raw_records.py) is found, read raw
with the partner's own login, set aside and passed, as the kernel does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, CorruptRecordException, KafkaError

from emeuse.kernel.raw_records import RawRecord
from emeuse.partner.dispatch import Dispatcher, Outcome, Record
from emeuse.partner.metrics import PartnerMetrics
from emeuse.runtime.unreadable import record_problem

log = structlog.get_logger("emeuse.partner")
# What getmany() raises for a record it cannot unpack, naming no partition nor offset.
UNREADABLE_ERRORS = (UnicodeDecodeError, CorruptRecordException)
# (topic, partition, offset) -> the first record there or after, read without aiokafka's
# decoder (kernel.raw_records.read_raw_record with the partner's login); None at the end.
RawRead = Callable[[str, int, int], Awaitable[RawRecord | None]]


class Consumer(Protocol):
    """The part of aiokafka's AIOKafkaConsumer the loop uses."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Any]]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    async def position(self, partition: TopicPartition) -> int: ...

    async def committed(self, partition: TopicPartition) -> int | None: ...

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> Mapping[TopicPartition, int]: ...

    async def end_offsets(
        self, partitions: list[TopicPartition]
    ) -> Mapping[TopicPartition, int]: ...


class FeedLoop:
    def __init__(
        self,
        consumer: Consumer,
        dispatcher: Dispatcher,
        metrics: PartnerMetrics,
        *,
        partner_id: str,
        stop: asyncio.Event,
        read_raw: RawRead,
        offset_reset: str = "earliest",
        max_batch: int = 100,
        poll_ms: int = 500,
    ) -> None:
        self.consumer = consumer
        self.read_raw = read_raw
        self.offset_reset = offset_reset
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.partner_id = partner_id
        self.stop = stop
        self.max_batch = max_batch
        self.poll_ms = poll_ms
        # Next offset to commit per partition this member owns, and what Kafka has.
        self.handled: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.owned: set[TopicPartition] = set()
        # Held while a record is handled, so a rebalance waits for it and commits it.
        self.lock = asyncio.Lock()

    # Rebalance listener (aiokafka calls these from its coordinator task).
    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = set(revoked)
        if not revoked:  # aiokafka calls it with nothing before the first assignment
            return
        async with self.lock:
            await self.commit(only=revoked)
            self.owned -= revoked
            for tp in revoked:
                self.handled.pop(tp, None)
                self.committed.pop(tp, None)
        log.info("partitions.revoked", partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.owned |= set(assigned)
        log.info("partitions.assigned", partitions=sorted(tp.partition for tp in self.owned))

    async def run(self) -> None:
        """Until `stop` is set; commits what was handled before returning (or raising)."""
        try:
            while not self.stop.is_set():
                try:
                    batches = await self.consumer.getmany(
                        timeout_ms=self.poll_ms, max_records=self.max_batch
                    )
                except UNREADABLE_ERRORS as exc:
                    await self.step_over_unreadable(exc)
                    continue
                except KafkaError:
                    raise
                except Exception as exc:  # a record the client chokes on in another way
                    if not await self.step_over_unreadable(exc):
                        raise
                    continue
                for tp, records in batches.items():
                    if not await self._handle_partition(tp, records):
                        break
                await self.commit()
                self.record_lag()
        finally:
            await self.commit()

    async def _handle_partition(self, tp: TopicPartition, records: Sequence[Any]) -> bool:
        """Handle a partition's fetched records in order; False when stopping."""
        for raw in records:
            if self.stop.is_set():
                return False
            async with self.lock:
                if tp not in self.owned:
                    # Revoked while this batch was in hand: the new owner reads it.
                    return True
                outcome = await self.dispatcher.dispatch(_record(raw))
                if outcome is Outcome.INTERRUPTED:
                    return False
                self.handled[tp] = raw.offset + 1
            # Let a rebalance waiting for the lock in before the next record.
            await asyncio.sleep(0)
        return True

    async def step_over_unreadable(self, exc: Exception) -> bool:
        """getmany() failed inside its fetch, and what it had drained of other partitions
        is lost to it: each partition goes back to its next unhandled record, then is read
        alone, one record at a time up to its present end, until the record the client
        cannot read is met; that one is set aside and passed. True if one was found."""
        log.warning("feed.unreadable_record", error=type(exc).__name__)
        found = False
        for tp in sorted(self.owned):
            if self.stop.is_set():
                break
            if await self._rewind(tp):
                found = await self._read_alone(tp) or found
        return found

    async def _rewind(self, tp: TopicPartition) -> bool:
        offset = self.handled.get(tp)
        try:
            if offset is None:  # nothing handled since it was assigned: from the commit
                offset = await self.consumer.committed(tp)
            if offset is None and self.offset_reset == "earliest":  # a new group
                offset = (await self.consumer.beginning_offsets([tp]))[tp]
            # (A new group starting at `latest` goes on from where the consumer is.)
        except KafkaError:
            offset = None  # the broker is away: read on from where the consumer is
        async with self.lock:
            if tp not in self.owned:
                return False
            if offset is not None:
                self.consumer.seek(tp, offset)
        return True

    async def _read_alone(self, tp: TopicPartition) -> bool:
        try:
            end = (await self.consumer.end_offsets([tp]))[tp]
        except KafkaError:
            return False  # fetching as usual meets the record again
        while not self.stop.is_set() and tp in self.owned:
            try:
                if await self.consumer.position(tp) >= end:
                    return False
                got = await self.consumer.getmany(tp, timeout_ms=self.poll_ms, max_records=1)
            except KafkaError as err:
                if not isinstance(err, CorruptRecordException):
                    return False
                await self._set_aside(tp, err)
                return True
            except Exception as err:
                await self._set_aside(tp, err)
                return True
            if not got.get(tp) or not await self._handle_partition(tp, got[tp]):
                return False
        return False

    async def _set_aside(self, tp: TopicPartition, err: Exception) -> None:
        async with self.lock:
            if tp not in self.owned:
                return  # revoked meanwhile: its next owner meets the record
            position = await self.consumer.position(tp)
            try:
                raw = await self.read_raw(tp.topic, tp.partition, position)
            except Exception as raw_err:  # its place alone is still worth a dead letter
                log.warning("feed.raw_read_failed", error=type(raw_err).__name__)
                raw = None
            record, reason = _what_was_read(tp, position, raw, err)
            await self.dispatcher.set_aside_unreadable(record, reason)
            self.handled[tp] = record.offset + 1
            self.consumer.seek(tp, record.offset + 1)

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        offsets = {
            tp: offset
            for tp, offset in self.handled.items()
            if tp in self.owned
            and (only is None or tp in only)
            and self.committed.get(tp) != offset
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced: another member reads these records again (at-least-once).
            log.warning("offsets.commit_failed", partitions=sorted(tp.partition for tp in offsets))
            return
        except KafkaError as exc:
            log.warning("offsets.commit_failed", error=type(exc).__name__)
            return
        self.committed.update(offsets)

    def record_lag(self) -> None:
        for tp in self.owned:
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            done = self.committed.get(tp, self.handled.get(tp))
            if done is None:
                continue
            lag = max(highwater - done, 0)
            self.metrics.lag.labels(self.partner_id, tp.topic, str(tp.partition)).set(lag)


def _what_was_read(
    tp: TopicPartition, position: int, raw: RawRecord | None, err: Exception
) -> tuple[Record, str]:
    """The record as read raw, and why the client could not read it (the raw reading's
    finding first: the client's error text may say less)."""
    problem = None if raw is None else record_problem(raw)
    why = problem or f"{type(err).__name__}: {err}"[:300]
    reason = f"the Kafka client could not read the record: {why}"
    if raw is None:
        empty = Record(tp.topic, tp.partition, position, None, None, ())
        return empty, reason + " (nor could it be read raw)"
    return Record(raw.topic, raw.partition, raw.offset, raw.key, raw.value, raw.headers), reason


def _record(raw: Any) -> Record:
    return Record(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple(raw.headers or ()),
    )
