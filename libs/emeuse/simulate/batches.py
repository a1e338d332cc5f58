"""Kafka records sent in whole batches: the simulator's way to 5,000 records/s.

kafka-python's `send` costs ~100 us of Python per record (a future, the accumulator's lock,
a wake-up of its I/O thread per new batch). Here the caller's thread appends each record
to an open batch per partition (aiokafka's batch builder, in C), and a full batch, or one
older than `linger_s`, goes to an aiokafka producer running on an event loop in a thread
of its own: one future per batch, not per record, and one wake-up of that thread for all
the batches that are ready together (a wake-up is a write to the loop's socket, and on a
busy machine often a switch to the other thread: one per batch cost a fifth of the sending
thread's time at 5,000 records/s, the batches being small, per partition and per 0.1 s).
Records are partitioned by key with Kafka's default partitioner (murmur2), as every other
producer of the platform.

At most `max_in_flight` batches wait for the broker; beyond that `add` blocks, and the time
it spent blocked (`waited_s`) says the broker, not this process, set the pace.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from concurrent.futures import Future, wait
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

# what the batch's records were tagged with (how many of each), and None or why it failed
Delivered = Callable[[Counter[Hashable], str | None], None]
Headers = list[tuple[str, bytes]]


class TopicUnavailableError(Exception):
    """A topic the producer cannot learn the partitions of."""


class _Open:
    __slots__ = ("batch", "since", "tags")

    def __init__(self, batch: BatchBuilder) -> None:
        self.batch, self.tags, self.since = batch, Counter[Hashable](), time.monotonic()


class BatchProducer:
    def __init__(
        self,
        delivered: Delivered,
        client_id: str = "emeuse-simulate",
        linger_s: float = 0.1,
        batch_bytes: int = 512 * 1024,
        max_in_flight: int = 64,
        **connection: Any,
    ) -> None:
        """`connection`: aiokafka's bootstrap_servers and, for a partner, its SASL options."""
        self.delivered, self.linger_s = delivered, linger_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kafka", daemon=True)
        self.thread.start()

        async def started() -> AIOKafkaProducer:  # aiokafka binds to the loop it is made on
            producer = AIOKafkaProducer(
                **connection,
                client_id=client_id,
                max_batch_size=batch_bytes,
                max_request_size=max(batch_bytes * 2, 1_048_576),
                acks="all",
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            return producer

        try:
            self.producer: AIOKafkaProducer = self._await(started())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise
        self.partitioner = DefaultPartitioner()
        self.partitions: dict[str, list[int]] = {}
        self.partition_of: dict[tuple[str, bytes], int] = {}
        self.open: dict[tuple[str, int], _Open] = {}
        self.ready: list[tuple[_Open, str, int]] = []  # closed, to hand to the loop together
        self.in_flight = threading.BoundedSemaphore(max_in_flight)
        self.pending: set[Future[None]] = set()
        self.waited_s = 0.0
        self.batches = 0
        # The live sender and the care teams' thread (delivery receipts) both add records:
        # one of them at a time touches the open batches.
        self.lock = threading.RLock()

    def _await(self, coroutine: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _partition(self, topic: str, key: bytes) -> int:
        partition = self.partition_of.get((topic, key))
        if partition is None:
            every = self.partitions.get(topic)
            if every is None:
                try:
                    every = sorted(self._await(self.producer.partitions_for(topic)))
                except (KafkaError, TimeoutError) as exc:
                    raise TopicUnavailableError(
                        f"topic {topic} is not on the broker or not writable "
                        f"({type(exc).__name__}; `emeuse topics create` creates the platform's)"
                    ) from None
                self.partitions[topic] = every
            partition = self.partitioner(key, every, every)
            self.partition_of[topic, key] = partition
        return partition

    def add(self, topic: str, key: bytes, value: bytes, headers: Headers, tag: Hashable) -> None:
        """Append one record (`tag` is handed back on delivery); sends the batches that are
        full or have waited long enough."""
        with self.lock:
            partition = self._partition(topic, key)
            current = self.open.get((topic, partition))
            if current is None:
                current = self.open[topic, partition] = _Open(self.producer.create_batch())
            if current.batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                self._send(topic, partition, current)
                current = self.open[topic, partition] = _Open(self.producer.create_batch())
                appended = current.batch.append(
                    key=key, value=value, timestamp=None, headers=headers
                )
                if appended is None:
                    raise ValueError(f"a record of {len(value)} bytes is larger than a batch")
            current.tags[tag] += 1
            if time.monotonic() - current.since > self.linger_s:
                self.send_lingering()
            self._dispatch()

    def send_lingering(self) -> None:
        """Send every open batch older than the linger time."""
        with self.lock:
            now = time.monotonic()
            for (topic, partition), current in list(self.open.items()):
                if now - current.since > self.linger_s:
                    del self.open[topic, partition]
                    self._send(topic, partition, current)
            self._dispatch()

    def _send(self, topic: str, partition: int, current: _Open) -> None:
        """Close the batch and queue it for the loop (`_dispatch` hands it over)."""
        if not self.in_flight.acquire(blocking=False):
            self._dispatch()  # the batches queued hold slots too: they must go first
            began = time.monotonic()
            self.in_flight.acquire()
            self.waited_s += time.monotonic() - began
        self.batches += 1
        current.batch.close()
        self.ready.append((current, topic, partition))

    def _dispatch(self) -> None:
        """Hand the queued batches to the loop, in one wake-up."""
        if not self.ready:
            return
        ready, self.ready = self.ready, []
        future = asyncio.run_coroutine_threadsafe(self._deliver_all(ready), self.loop)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)

    async def _deliver_all(self, ready: list[tuple[_Open, str, int]]) -> None:
        # Tasks start in order, so a partition's batches go in the order they were filled.
        await asyncio.gather(*(self._deliver(*each) for each in ready))

    async def _deliver(self, current: _Open, topic: str, partition: int) -> None:
        error: str | None = None
        try:
            await (await self.producer.send_batch(current.batch, topic, partition=partition))
        except Exception as exc:  # counted as the batch's records failing, with the reason
            error = type(exc).__name__
        finally:
            self.in_flight.release()
        self.delivered(current.tags, error)

    def flush(self, timeout: float = 30) -> None:
        with self.lock:
            for (topic, partition), current in list(self.open.items()):
                del self.open[topic, partition]
                self._send(topic, partition, current)
            self._dispatch()
        # Failures are counted by each batch's callback; what is still pending is reported so.
        wait(list(self.pending), timeout=timeout)

    def close(self) -> None:
        self.flush()
        self._await(self.producer.stop(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
