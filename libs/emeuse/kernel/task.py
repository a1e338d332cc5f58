"""A partition task: everything of one partition number p of a service.

- a transactional producer with id `<app>-<p>`: its start fences any previous owner of p
  and aborts that owner's open transaction, so no zombie can commit;
- the store of p and its changelog partition p;
- the due-index of the timers of p's keys.

Records of p (every input topic) are handled in offset order, a poll's worth per
transaction: outputs, changelog records and the next input offsets (changelog records too)
commit together or not at all; only then does the store change (see store.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError, ProducerFenced

from emeuse.kernel import metrics
from emeuse.kernel.declare import Lookup, Timer
from emeuse.kernel.outputs import SetAside
from emeuse.kernel.store import (
    INPUT_OFFSETS,
    PartitionStore,
    changelog_key,
    encode_offset,
    split_changelog_key,
)
from emeuse.kernel.tx import CURRENT, DELETED, Tx
from emeuse.runtime.logs import ids_context

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

    from emeuse.kernel.engine import Kernel

log = structlog.get_logger("emeuse.kernel")
FIRING_NAMESPACE = uuid.UUID("2f0c8a0e-6b3d-4f3e-9a57-55e0e1a1f055")
# Records per transaction, at most: larger batches commit less often, smaller ones answer
# sooner (an alert waits for its batch's commit).
MAX_BATCH = 500
# Handling gives the event loop back after this much CPU, shared by the tasks handling at
# once (each its part, at least MIN_SLICE_S): between two turns of the loop a gRPC call
# waits for about one slice, not one per partition handling.
YIELD_EVERY_S = 0.002
MIN_SLICE_S = 0.0005
# A timer whose handling left its deadline in the past is tried again this much later.
REFIRE_AFTER_MS = 5000
# Decoded values kept for codecs that share them, per task: the hot keys, not all of them
# (a million patients must fit an instance's memory).
CACHE_ENTRIES = 10_000
# How long closing a task waits for its producer to stop.
PRODUCER_STOP_S = 5.0
# A commit that fails for a passing reason is retried after this long.
RETRY_AFTER_S = 1.0


class Fenced(Exception):
    """Another instance now owns this partition: this task must stop."""


class LetGo(Exception):
    """The partition is being closed: a read of its whole state for the hooks stops."""


class ProducerLost(Fenced):
    """The producer can neither abort nor go on (the broker went away mid-transaction and
    the client is in its FATAL_ERROR state): the task stops and is opened anew."""


# What a transaction's calls raise besides KafkaError: aiokafka's IllegalOperation (a send
# outside a transaction the client aborted itself) and the assertion of its state machine.
TRANSACTION_ERRORS = (KafkaError, IllegalOperation, AssertionError)


class _Turns:
    """Handlers never wait: a task handling records or timers gives gRPC calls and the other
    tasks their turn each time its slice of the loop is spent."""

    __slots__ = ("_ends", "_slice")

    def __init__(self, slice_s: Callable[[], float]) -> None:
        self._slice = slice_s
        self._ends = time.perf_counter() + slice_s()

    async def take(self) -> None:
        if time.perf_counter() > self._ends:
            await asyncio.sleep(0)
            self._ends = time.perf_counter() + self._slice()


class PartitionTask:
    def __init__(self, kernel: Kernel, partition: int) -> None:
        self.kernel = kernel
        self.partition = partition
        self.inputs = [TopicPartition(topic, partition) for topic in kernel.input_topics]
        self.queue: deque[ConsumerRecord | SetAside] = deque()
        self.ready = asyncio.Event()
        self.stopped = False
        # Set between a rebalance's revocation and the next assignment: no new batch starts.
        self.suspended = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.failed: BaseException | None = None
        # Next offset per input to hand to the task (fetched) and to read after a failure.
        self.fetched: dict[TopicPartition, int] = {}
        # Where a gap before the first record handed made the partition be read again.
        self.refetched: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self._wakeup = asyncio.Event()
        self._cache: dict[tuple[str, str], Any] = {}
        self._heap: list[tuple[int, str, str]] = []
        self._deadlines: dict[tuple[str, str], int] = {}
        # Timers whose every deadline is to be computed again (see retime).
        self._retime: set[str] = set()
        self._producer: AIOKafkaProducer | None = None
        self._store: PartitionStore | None = None
        self._runner: asyncio.Task[None] | None = None
        # The open() under way, if any: a rebalance may take p away before it is done.
        self._opener: asyncio.Task[Any] | None = None
        # The partition hooks being told of the opening (they read the store off the loop).
        self._announcing: asyncio.Future[None] | None = None

    # -- opening: fence, recover, timers -------------------------------------------------

    async def open(self) -> None:
        started = time.monotonic()
        k = self.kernel
        self._opener = asyncio.current_task()
        await self._new_producer()  # InitProducerId: fences the previous owner of p
        if self.stopped:  # let go while waiting for the broker
            return
        self._store = PartitionStore(k.store_path(self.partition))
        await self._recover()
        self._load_timers()
        # Recovered and not handling yet: what the service keeps per partition is counted
        # from the whole committed state (PartitionHook), then kept by its handlers. Shielded:
        # a close meanwhile stops the count (the scan raises) and waits for it to end before
        # it closes the store the count reads.
        self._announcing = asyncio.ensure_future(k.partition_opened(self, self._scan))
        await asyncio.shield(self._announcing)
        if self.stopped:
            return
        # Computed again before the first batch: see Timer.outside.
        self._retime.update(name for name, timer in k.timers.items() if timer.outside)
        # Only now, with any previous owner fenced and the changelog read to its end, is
        # where to read on final for p: the offsets its last commit wrote there.
        starts = await self._starts()
        if self.stopped:
            return
        # From the seeks to `ready`, nothing awaits. Until a task is ready the kernel drops
        # what the consumer hands it, and the consumer's position moves on all the same: an
        # input sought before an await (the group's offset of another input) could be read
        # on meanwhile, its first records dropped, and the task then handed records from
        # beyond its next one (a chaos round lost ~320 sensor reports that way).
        for tp, start in starts.items():
            # A rebalance that began meanwhile took the assignment away: the next one either
            # closes this task or keeps it, and then rewinds it to these offsets.
            if k.owns(tp):
                k.consumer.seek(tp, start)
            self.committed[tp] = self.fetched[tp] = start
        self._opener = None
        k.progressed(self.committed)
        self.ready.set()
        self._runner = asyncio.create_task(self._run(), name=f"{k.service}-task-{self.partition}")
        metrics.RECOVERY_SECONDS.labels(k.service).observe(time.monotonic() - started)
        log.info(
            "partition.ready",
            partition=self.partition,
            seconds=round(time.monotonic() - started, 3),
            timers=len(self._deadlines),
        )

    async def _starts(self) -> dict[TopicPartition, int]:
        """Where to read each input on from: the offset p's last commit wrote in the
        changelog; else the group's (kept there before the changelog kept them); else the
        input's first offset."""
        assert self._store is not None
        k = self.kernel
        first = await k.consumer.beginning_offsets(self.inputs)
        starts: dict[TopicPartition, int] = {}
        for tp in self.inputs:
            start = self._store.input_offset(tp.topic)
            if start is None:
                committed = await k.consumer.committed(tp)
                start = committed if committed is not None else first[tp]
            starts[tp] = start
        return starts

    async def _recover(self) -> None:
        """Read the changelog of p from the store's checkpoint to its end."""
        assert self._store is not None
        k = self.kernel
        tp = TopicPartition(k.changelog_topic, self.partition)
        reader = AIOKafkaConsumer(
            bootstrap_servers=list(k.settings.kafka_bootstrap),
            **k.settings.kafka_options(),
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id=f"{k.app_id}-restore-{self.partition}",
        )
        await reader.start()
        try:
            reader.assign([tp])
            first = (await reader.beginning_offsets([tp]))[tp]
            end = (await reader.end_offsets([tp]))[tp]
            checkpoint = self._store.checkpoint()
            if checkpoint is None or checkpoint > end or checkpoint < first:
                if checkpoint is not None:
                    log.warning("store.rebuilt", partition=self.partition, reason="checkpoint")
                self._reopen_empty()
                checkpoint = first
            reader.seek(tp, checkpoint)
            read = 0
            while await reader.position(tp) < end:
                batch = await reader.getmany(tp, timeout_ms=1000, max_records=5000)
                changes = []
                for record in batch.get(tp, []):
                    table, key = split_changelog_key(record.key or b"")
                    changes.append((table, key, record.value))
                read += len(changes)
                self._store.apply(changes, checkpoint=await reader.position(tp))
                # Values decoded from an earlier batch (for a deadline) are older than these:
                # dropped, or the key's deadline and its handlers would read the old value.
                for table, key, _ in changes:
                    self._cache.pop((table, key), None)
                due = self._due_of_keys({(t, key) for t, key, _ in changes}, self._stored_lookup)
                self._store.apply((), [(n, key, d) for (n, key), d in due.items()])
            metrics.RECOVERED_RECORDS.labels(k.service).inc(read)
        finally:
            await reader.stop()

    def _reopen_empty(self) -> None:
        assert self._store is not None
        path = self._store.path
        self._store.close()
        PartitionStore.destroy(path)
        self._store = PartitionStore(path)

    def _stored_lookup(self, key: str) -> Lookup:
        return lambda table: self.read(table, key)

    def _due_of_keys(
        self, keys: Iterable[tuple[str, str]], lookup_for: Callable[[str], Lookup]
    ) -> dict[tuple[str, str], int | None]:
        """(timer, key) -> next deadline in ms, for the timers watching the changed tables."""
        timers = self.kernel.timers_of_table
        now = datetime.now(UTC)
        due: dict[tuple[str, str], int | None] = {}
        for table, key in keys:
            for timer in timers.get(table, ()):
                if (timer.name, key) not in due:
                    due[(timer.name, key)] = self._deadline(timer, key, lookup_for(key), now)
        return due

    def _deadline(self, timer: Timer, key: str, lookup: Lookup, now: datetime) -> int | None:
        """A key's next deadline (ms) by its timer's `due`; a `due` that fails on a bad
        state is asked again later: it never stops the partition."""
        try:
            return _ms(timer.due(key, lookup, now))
        except Exception as exc:
            log.error("timer.due_failed", timer=timer.name, error=type(exc).__name__)
            return _ms(now + timedelta(milliseconds=REFIRE_AFTER_MS))

    def retime(self, timer: str) -> None:
        """Compute `timer`'s deadline of every key of p again, from the committed store:
        for a `due` that also reads what no table holds (a directory every instance keeps),
        when that changes. Done by the task's loop between two batches, so it never races a
        commit; asked several times meanwhile, it is done once."""
        self._retime.add(timer)
        self._wakeup.set()

    def _retime_keys(self) -> None:
        assert self._store is not None
        names, self._retime = self._retime, set()
        now = datetime.now(UTC)
        for name in sorted(names):
            timer = self.kernel.timers[name]
            keys = {key for table in timer.tables for key, _ in self._store.items(table)}
            due: list[tuple[str, str, int | None]] = []
            for key in sorted(keys):
                due.append((name, key, self._deadline(timer, key, self._stored_lookup(key), now)))
            self._store.apply((), due)
            for _, key, deadline in due:
                self._schedule(name, key, deadline)
            log.info("timers.retimed", partition=self.partition, timer=name, keys=len(due))

    def _load_timers(self) -> None:
        assert self._store is not None
        for name in self.kernel.timers:
            for key, deadline in self._store.due_items(name):
                self._schedule(name, key, deadline)

    # -- reading state ------------------------------------------------------------------

    def read(self, table: str, key: str) -> Any:
        """The committed value of a key of this partition (None when absent)."""
        cached = self._cache.get((table, key))
        if cached is not None:
            return cached
        if self._store is None:
            return None
        raw = self._store.get(table, key)
        if raw is None:
            return None
        codec = self.kernel.codec(table)
        value = codec.decode(raw)
        if getattr(codec, "shared", False):
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[(table, key)] = value
        return value

    def items(self, table: str) -> Iterable[tuple[str, Any]]:
        if self._store is None:
            return []
        codec = self.kernel.codec(table)
        return ((key, codec.decode(raw)) for key, raw in self._store.items(table))

    def _scan(self, table: str) -> Iterator[tuple[str, Any]]:
        """The committed values of a table, for the partition hooks (read in a worker
        thread): cut short once the task is closing, which then waits for the reader."""
        for item in self.items(table):
            if self.stopped:
                raise LetGo(self.partition)
            yield item

    # -- the loop -------------------------------------------------------------------------

    def enqueue(self, records: Iterable[ConsumerRecord | SetAside]) -> None:
        for record in records:
            self.queue.append(record)
            tp = TopicPartition(record.topic, record.partition)
            self.fetched[tp] = record.offset + 1
        self._wakeup.set()

    async def _run(self) -> None:
        try:
            while not self.stopped:
                if self._retime and not self.suspended:
                    self._retime_keys()
                if self.suspended:
                    wait: float | None = None
                elif self.queue:
                    await self._busy(self._process_batch())
                    continue
                else:
                    wait = self._seconds_to_next_timer()
                    if wait is not None and wait <= 0:
                        await self._busy(self._fire_timers())
                        continue
                self._wakeup.clear()
                if ((self.queue or self._retime) and not self.suspended) or self.stopped:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
        except Fenced as exc:
            lost = isinstance(exc, ProducerLost)
            log.warning(
                "partition.producer_lost" if lost else "partition.fenced", partition=self.partition
            )
            self.stopped = True
            self.kernel.task_fenced(self)
        except Exception as exc:  # never silent: the kernel stops the instance on it
            self.failed = exc
            log.exception("partition.task_failed", partition=self.partition)
            self.kernel.task_failed(self, exc)

    async def _busy(self, work: Any) -> None:
        self._idle.clear()
        try:
            await work
        finally:
            self._idle.set()

    def _slice(self) -> float:
        return max(MIN_SLICE_S, YIELD_EVERY_S / max(1, self.kernel.busy_tasks))

    async def suspend(self) -> None:
        """A rebalance began: finish the batch under way, forget what is queued."""
        self.suspended = True
        await self._idle.wait()
        self.queue.clear()
        self.fetched = dict(self.committed)

    def resume_after_rebalance(self) -> None:
        """The partition stayed here: read on from the last commit."""
        self.suspended = False
        self.rewind()
        self._wakeup.set()

    async def _process_batch(self) -> None:
        k = self.kernel
        records = [self.queue.popleft() for _ in range(min(MAX_BATCH, len(self.queue)))]
        tx = self._new_tx()
        offsets: dict[TopicPartition, int] = {}
        started = time.perf_counter()
        token = CURRENT.set(tx)
        try:
            with self._sharing() as turns:
                for record in records:
                    tx.now = datetime.now(UTC)
                    if isinstance(record, SetAside):
                        tx.dead_letter(record)
                    else:
                        await k.handle(record, tx)
                    offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
                    await turns.take()
        finally:
            CURRENT.reset(token)
        handled = time.perf_counter()
        metrics.HANDLE_SECONDS.labels(k.service).observe(handled - started)
        metrics.BATCH_RECORDS.labels(k.service).observe(len(records))
        if await self._commit(tx, offsets):
            self.committed.update(offsets)
            k.resume_if_drained(self)
        metrics.COMMIT_SECONDS.labels(k.service).observe(time.perf_counter() - handled)

    def _new_tx(self) -> Tx:
        k = self.kernel
        return Tx(self.partition, k.origin, k.dead_letters, self.read, k.partition_of, self.items)

    def _seconds_to_next_timer(self) -> float | None:
        while self._heap:
            deadline, table, key = self._heap[0]
            if self._deadlines.get((table, key)) != deadline:
                heapq.heappop(self._heap)  # superseded
                continue
            return max(0.0, deadline / 1000 - time.time())
        return None

    async def _fire_timers(self) -> None:
        k = self.kernel
        now_ms = int(time.time() * 1000)
        due: list[tuple[str, str, int]] = []
        while self._heap and len(due) < MAX_BATCH:
            deadline, table, key = self._heap[0]
            if deadline > now_ms:
                break
            heapq.heappop(self._heap)
            if self._deadlines.get((table, key)) == deadline:
                due.append((table, key, deadline))
        if not due:
            return
        tx = self._new_tx()
        token = CURRENT.set(tx)
        try:
            with self._sharing() as turns:
                await self._fire_each(due, tx, now_ms, turns)
        finally:
            CURRENT.reset(token)
        if not await self._commit(tx, {}, fired=due):
            for table, key, deadline in due:  # not committed: try again later
                self._schedule(table, key, deadline + REFIRE_AFTER_MS)
            return
        metrics.TIMERS_FIRED.labels(k.service).inc(len(due))

    async def _fire_each(
        self, due: list[tuple[str, str, int]], tx: Tx, now_ms: int, turns: _Turns
    ) -> None:
        k = self.kernel
        for table, key, deadline in due:
            await turns.take()
            tx.now = datetime.now(UTC)
            metrics.TIMER_LATENESS.labels(k.service).observe(max(0, now_ms - deadline) / 1000)
            mark = tx.savepoint()
            # A firing's id: the same for the same deadline, so its lines can be followed.
            firing = str(uuid.uuid5(FIRING_NAMESPACE, f"{table}/{key}/{deadline}"))
            try:
                with ids_context(f"timer:{table}", firing, firing):
                    await k.timers[table].fire(key, tx)
            except Exception as exc:  # one key's trouble never stops the others
                tx.rollback(mark)
                log.error("timer.failed", partition=self.partition, error=type(exc).__name__)

    @contextlib.contextmanager
    def _sharing(self) -> Iterator[_Turns]:
        """Counted among the tasks handling at once while it handles (they share a slice)."""
        self.kernel.busy_tasks += 1
        try:
            yield _Turns(self._slice)
        finally:
            self.kernel.busy_tasks -= 1

    # -- committing ----------------------------------------------------------------------

    async def _commit(
        self,
        tx: Tx,
        offsets: dict[TopicPartition, int],
        fired: list[tuple[str, str, int]] = (),  # type: ignore[assignment]
    ) -> bool:
        """One transaction: outputs, changelog, offsets. Then the store. False when aborted
        (the inputs are read again from the last commit)."""
        k = self.kernel
        producer = self._producer
        assert producer is not None and self._store is not None
        encoded: list[tuple[str, str, bytes | None]] = []
        for (table, key), value in tx.writes.items():
            encoded.append((table, key, None if value is DELETED else k.codec(table).encode(value)))
        for tp, offset in offsets.items():
            encoded.append((INPUT_OFFSETS, tp.topic, encode_offset(offset)))
        if not offsets and not encoded and not tx.outputs:
            self._after_fire(fired, {})
            self._counted(tx)
            return True
        committing = False
        try:
            await producer.begin_transaction()
            for out in tx.outputs:
                await producer.send(
                    out.topic,
                    value=out.value,
                    key=out.key,
                    partition=out.partition,
                    headers=out.headers,
                )
            last = await self._send_changelog(producer, encoded)
            committing = True
            await producer.commit_transaction()
            checkpoint = None
            if last is not None:
                sent, size = last
                checkpoint = (await sent).offset + size
        except ProducerFenced as exc:
            metrics.TRANSACTIONS.labels(k.service, "fenced").inc()
            raise Fenced() from exc
        except TRANSACTION_ERRORS as exc:
            metrics.TRANSACTIONS.labels(k.service, "aborted").inc()
            if committing:
                # The commit may have been applied at the broker or not (the broker died or
                # the answer was lost): neither this task's offsets nor its store can be
                # trusted. The task is opened anew: a new producer settles the transaction,
                # the store and its input offsets catch up from the changelog.
                log.warning(
                    "transaction.outcome_unknown",
                    partition=self.partition,
                    error=type(exc).__name__,
                )
                raise ProducerLost() from exc
            log.warning("transaction.aborted", partition=self.partition, error=type(exc).__name__)
            await self._abort()
            return False
        metrics.TRANSACTIONS.labels(k.service, "committed").inc()
        if offsets:
            k.progressed(offsets)
        for out in tx.outputs:
            k.count_output(out)
        self._counted(tx)
        due = self._due_of_keys(tx.writes, lambda key: lambda table: tx.get(table, key))
        self._store.apply(
            encoded, [(t, key, d) for (t, key), d in due.items()], checkpoint=checkpoint
        )
        for (table, key), value in tx.writes.items():
            if value is DELETED or not getattr(k.codec(table), "shared", False):
                self._cache.pop((table, key), None)
            else:
                self._cache[(table, key)] = value
        for (table, key), deadline in due.items():
            self._schedule(table, key, deadline)
        self._after_fire(fired, due)
        return True

    async def _send_changelog(
        self, producer: AIOKafkaProducer, encoded: list[tuple[str, str, bytes | None]]
    ) -> tuple[asyncio.Future[Any], int] | None:
        """The changelog records of a batch in as few record batches as they fit in: one
        future each, not one per record. The last one's future and size (for the
        checkpoint: its base offset plus its size), or None when there is none."""
        topic, last = self.kernel.changelog_topic, None
        batch, size = producer.create_batch(), 0
        for table, key, raw in encoded:
            record_key = changelog_key(table, key)
            if batch.append(timestamp=None, key=record_key, value=raw) is None:  # full
                sent = await producer.send_batch(batch, topic, partition=self.partition)
                last = (sent, size)
                batch, size = producer.create_batch(), 0
                # An empty batch takes any first record, however large.
                batch.append(timestamp=None, key=record_key, value=raw)
            size += 1
        if size:
            last = (await producer.send_batch(batch, topic, partition=self.partition), size)
        return last

    def _counted(self, tx: Tx) -> None:
        for apply in tx.committed():
            try:
                apply()
            except Exception:  # a metric must never undo a commit
                log.exception("metrics.failed", partition=self.partition)

    def _after_fire(
        self, fired: Iterable[tuple[str, str, int]], due: dict[tuple[str, str], int | None]
    ) -> None:
        """A timer that fired and changed nothing is asked for its deadline again; one whose
        deadline is still past is tried again later, never in a tight loop."""
        assert self._store is not None
        now = datetime.now(UTC)
        now_ms = int(now.timestamp() * 1000)
        kept: list[tuple[str, str, int | None]] = []
        for name, key, _ in fired:
            if (name, key) in due:
                deadline = due[(name, key)]
            else:
                timer = self.kernel.timers[name]
                deadline = self._deadline(timer, key, self._stored_lookup(key), now)
            if deadline is not None and deadline <= now_ms:
                deadline = now_ms + REFIRE_AFTER_MS
            self._schedule(name, key, deadline)
            kept.append((name, key, deadline))
        if kept:
            self._store.apply((), kept)

    async def _abort(self) -> None:
        """Throw the batch away and read its inputs again from the last commit."""
        assert self._producer is not None
        try:
            await self._producer.abort_transaction()
        except ProducerFenced as exc:
            raise Fenced() from exc
        except TRANSACTION_ERRORS as exc:
            # The producer is unusable. A new one alone would fence whoever owns p by now
            # and go on from this task's offsets and store, which may be behind what that
            # owner committed (this instance was away): the task is opened anew instead, from
            # the changelog (its state and input offsets).
            raise ProducerLost() from exc
        self.rewind()
        await asyncio.sleep(RETRY_AFTER_S)

    async def _new_producer(self) -> None:
        """A fresh transactional producer, waiting out a broker that is down (killed,
        restarting): the partition waits, nothing is lost, the process does not exit."""
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
        delay = RETRY_AFTER_S
        while not self.stopped:
            producer = self.kernel.transactional_producer(self.partition)
            try:
                await producer.start()
            except ProducerFenced as exc:
                raise Fenced() from exc
            except KafkaError as exc:
                log.warning(
                    "producer.unavailable", partition=self.partition, error=type(exc).__name__
                )
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._producer = producer
            return

    def rewind(self) -> None:
        """Drop what is queued and read every input of p again from the last commit."""
        self.queue.clear()
        for tp in self.inputs:
            if tp in self.committed and self.kernel.owns(tp):
                self.kernel.consumer.seek(tp, self.committed[tp])
                self.fetched[tp] = self.committed[tp]
        # Paused for a full queue that is now empty: it would never be resumed otherwise.
        self.kernel.resume_if_drained(self)

    def _schedule(self, table: str, key: str, deadline: int | None) -> None:
        if deadline is None:
            self._deadlines.pop((table, key), None)
        else:
            self._deadlines[(table, key)] = deadline
            heapq.heappush(self._heap, (deadline, table, key))
            self._wakeup.set()
        metrics.TIMERS_PENDING.labels(self.kernel.service, str(self.partition)).set(
            len(self._deadlines)
        )

    # -- closing --------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish the batch under way (commit or abort), then let go of p."""
        self.stopped = True
        self._wakeup.set()
        opener = self._opener
        if opener is not None and opener is not asyncio.current_task() and not opener.done():
            # Revoked while opening (instances joining one after another): the open stops
            # where it is, and what it had opened is closed below, the store's lock included.
            opener.cancel()
            with contextlib.suppress(BaseException):
                await opener
        if self._announcing is not None:
            with contextlib.suppress(BaseException):  # logged by the kernel
                await self._announcing
        if self._runner is not None:
            with contextlib.suppress(Exception):  # already logged by the task
                await self._runner
        self.kernel.partition_closed(self)
        try:
            if self._producer is not None:
                # Bounded: with the broker down, stop() would wait for its buffer to drain.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._producer.stop(), PRODUCER_STOP_S)
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None
        self._cache.clear()
        metrics.TIMERS_PENDING.labels(self.kernel.service, str(self.partition)).set(0)


def _ms(moment: datetime | None) -> int | None:
    """A deadline in whole milliseconds, never before the moment (a timer that fired a
    fraction early would find nothing due)."""
    return None if moment is None else math.ceil(moment.timestamp() * 1000)
