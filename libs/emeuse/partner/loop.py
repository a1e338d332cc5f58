"""The consume loop: fetch, dispatch one record at a time, commit what was handled.

At-least-once: an offset is committed only after its record was handled, skipped or
dead-lettered. A crash or a rebalance may deliver a record again; handlers dedupe by
`event.event_id`. Written against the few consumer methods it uses, so tests drive it
with a fake consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from emeuse.partner.dispatch import Dispatcher, Outcome, Record
from emeuse.partner.metrics import PartnerMetrics

log = structlog.get_logger("emeuse.partner")


class Consumer(Protocol):
    """The part of aiokafka's AIOKafkaConsumer the loop uses."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Any]]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...


class FeedLoop:
    def __init__(
        self,
        consumer: Consumer,
        dispatcher: Dispatcher,
        metrics: PartnerMetrics,
        *,
        partner_id: str,
        stop: asyncio.Event,
        max_batch: int = 100,
        poll_ms: int = 500,
    ) -> None:
        self.consumer = consumer
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
                batches = await self.consumer.getmany(
                    timeout_ms=self.poll_ms, max_records=self.max_batch
                )
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


def _record(raw: Any) -> Record:
    return Record(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple(raw.headers or ()),
    )
