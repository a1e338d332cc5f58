"""Every patient's consents, read whole from the bus by every instance, for checking the
partners' inbound events.

The consent table of the kernel (`patient_to_consents`) holds on each instance only the
partitions it owns, while any instance may take any partner's inbound event; asking the
owning instance would add a call per event. So each instance follows the consent topic
itself, like the partner registry (the same books: changes in the order of their
partition, which is the kernel's order too).

Ordering: before a batch of inbound events is checked, `seen_up_to_now` waits until every
consent change committed to the bus when it is called is applied here. It asks the end
offsets on a connection of its own: the broker answers a connection's requests one at a
time, and the follower's holds a fetch waiting up to 500 ms for new consents, which each
inbound batch waited behind (a partner's refusal took 0.2-0.5 s more). A consent
`RecordConsent` answered before the partner sent its event is therefore always seen
(the answer comes after the change is committed and applied); a change committed later
applies to what is checked after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import DecodeError

from emeuse.partners.v1.partners_pb2 import ConsentChanged
from emeuse.registry import CONSENT_CHANGED
from emeuse.runtime import kafka_clients
from services.gateway.domain.consent import ConsentBook

log = structlog.get_logger("emeuse.gateway.consents")
NewConsumer = Callable[[str], AIOKafkaConsumer]
PARTITIONS = [TopicPartition(CONSENT_CHANGED.name, p) for p in range(CONSENT_CHANGED.partitions)]


class ConsentsBehindError(RuntimeError):
    """The consents could not be read up to date in time: nothing is decided on old ones."""


def apply_change(book: ConsentBook, change: ConsentChanged) -> bool:
    """A consent change into the patient's book, as the kernel's table and every instance's
    followed books take it; False when it was there already (a redelivery)."""
    covers_from = (
        change.covers_from.ToDatetime(tzinfo=UTC) if change.HasField("covers_from") else None
    )
    return book.record(
        change.partner_id,
        change.purpose,
        change.changed_at.ToDatetime(tzinfo=UTC),
        change.granted,
        covers_from,
    )


def record_change(books: dict[str, ConsentBook], value: bytes | None) -> None:
    """One record of the consent topic into the patients' books."""
    if value is None:  # a tombstone: consents are never deleted, only withdrawn
        return
    try:
        change = ConsentChanged.FromString(value)
    except DecodeError:
        log.warning("consent.unreadable")
        return
    if change.patient_pseudonym:
        apply_change(books.setdefault(change.patient_pseudonym, ConsentBook()), change)


def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **kafka_clients.client_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # As every platform consumer: a change of an aborted transaction never applies.
        isolation_level="read_committed",
    )


async def _started(
    stack: contextlib.AsyncExitStack, consumer: AIOKafkaConsumer
) -> AIOKafkaConsumer:
    """Start `consumer`, its stop pushed first: a start that fails part way (after the
    bootstrap connected, say) is stopped too (aiokafka's stop takes a consumer in any state)."""
    stack.push_async_callback(consumer.stop)
    await consumer.start()
    return consumer


class FollowedConsents:
    def __init__(self) -> None:
        self.books: dict[str, ConsentBook] = {}
        # Set once the topic was first read to its end (a start may take a while).
        self.ready = asyncio.Event()
        # Asks end offsets only (no assignment, so no fetch ahead of them on its connection).
        self._ends: AIOKafkaConsumer | None = None
        # Next offset to read per partition, once the books in use hold what is before it.
        self._positions: dict[int, int] = {}
        self._moved = asyncio.Event()

    def book(self, patient: str) -> ConsentBook:
        return self.books.get(patient, ConsentBook())

    async def follow(self, bootstrap: str, new_consumer: NewConsumer = _consumer) -> None:
        """Read the consent topic from its beginning into fresh books, swap them in once
        caught up (the books in use never go back to older consents), then follow it.
        `new_consumer`: a consumer on `bootstrap` (a fake in tests)."""
        # Each consumer is stopped however the others' start or stop goes (a stop that
        # raises must not leave the other's connections open).
        async with contextlib.AsyncExitStack() as stack:
            consumer = await _started(stack, new_consumer(bootstrap))
            ends_reader = await _started(stack, new_consumer(bootstrap))
            try:
                consumer.assign(PARTITIONS)
                await consumer.seek_to_beginning(*PARTITIONS)
                ends = await consumer.end_offsets(PARTITIONS)
                books: dict[str, ConsentBook] = {}
                loaded = False
                while True:
                    batches = await consumer.getmany(timeout_ms=200)
                    for records in batches.values():
                        for record in records:
                            record_change(books, record.value)
                    positions = {tp.partition: await consumer.position(tp) for tp in PARTITIONS}
                    if not loaded and all(
                        positions[tp.partition] >= end for tp, end in ends.items()
                    ):
                        loaded = True
                        self.books = books
                        log.info("consents.ready", patients=len(books))
                    if loaded:
                        self._ends, self._positions = ends_reader, positions
                        self._wake()
                        self.ready.set()
            finally:
                self._ends, self._positions = None, {}

    async def seen_up_to_now(self, within_s: float) -> None:
        """Return once every consent change committed by now is in the books in use;
        ConsentsBehindError after `within_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while self._ends is None:
            await self._wait_moved(deadline - loop.time())
        try:
            ends = await asyncio.wait_for(
                self._ends.end_offsets(PARTITIONS), max(deadline - loop.time(), 0.01)
            )
        except TimeoutError:
            raise ConsentsBehindError("the consents' end could not be read in time") from None
        while not all(self._positions.get(tp.partition, -1) >= end for tp, end in ends.items()):
            await self._wait_moved(deadline - loop.time())

    async def _wait_moved(self, remaining: float) -> None:
        moved = self._moved
        try:
            await asyncio.wait_for(moved.wait(), max(remaining, 0.0))
        except TimeoutError:
            raise ConsentsBehindError("the consents were not read up to date in time") from None

    def _wake(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()


async def keep_following_consents(consents: FollowedConsents, bootstrap: str) -> None:
    """`follow`, started again after a broker failure, until the service stops."""
    while True:
        try:
            await consents.follow(bootstrap)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("consents.follow_failed", error=type(exc).__name__)
            await asyncio.sleep(1.0)
