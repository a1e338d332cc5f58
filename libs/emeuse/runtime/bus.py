"""Reading and writing events on Kafka from a faust worker, with nothing lost silently.

`Bus.process` decodes each raw record itself (rather than through a faust codec) so a
record that fails is dead-lettered with its partition and offset and the stream goes on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import faust
import structlog
from faust.types import EventT
from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import TOPICS, TopicSpec, dead_letter_topic
from emeuse.runtime import envelope as env
from emeuse.runtime import metrics
from emeuse.runtime.codec import (
    InvalidEventError,
    check_event,
    check_partition,
    decode,
    expected_partition,
)
from emeuse.runtime.events import Event, Fact, RetryableError, read_failure
from emeuse.runtime.logs import event_context
from emeuse.runtime.settings import ServiceSettings

log = structlog.get_logger("emeuse.bus")
KNOWN_TYPES = frozenset(spec.type_name for spec in TOPICS)
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1f4e-2b1e-4c55-9d55-e3e05e000055")


Handler = Callable[[Event], Awaitable[None]]


class Bus:
    """One per service: the topics it reads and writes, declared from the registry."""

    def __init__(self, app: faust.App, settings: ServiceSettings, *, retries: int = 3) -> None:
        self.app = app
        self.settings = settings
        self.retries = retries
        self._topics: dict[str, faust.TopicT] = {}
        self.dead_letters = dead_letter_topic(settings.service)
        # Records being handled now, and handled so far: the partition watchdog tells a
        # busy agent (its fetches wait, on purpose) from a partition nobody reads.
        self.handling = 0
        self.handled = 0

    def topic(self, spec: TopicSpec) -> faust.TopicT:
        if spec.name not in self._topics:
            self._topics[spec.name] = self.app.topic(
                spec.name,
                # Raw bytes: the bus decodes keys itself, so a key that is not UTF-8
                # is dead-lettered instead of crashing the agent in faust's key codec.
                key_type=bytes,
                key_serializer="raw",
                value_type=bytes,
                value_serializer="raw",
                partitions=spec.partitions,
                internal=False,
            )
        return self._topics[spec.name]

    async def publish(
        self,
        spec: TopicSpec,
        message: Message,
        *,
        key: str,
        subject_pseudonym: str,
        occurred_at: datetime,
        cause: EventEnvelope | None = None,
        territory: Territory.ValueType | None = None,
        experiment_id: str | None = None,
        event_id: str | None = None,
    ) -> EventEnvelope:
        """Publish one event and wait until the broker has it.

        Without an explicit id, a caused event's id derives from its cause, so a record
        handled twice (at-least-once) publishes the same ids and consumers dedupe on them.
        """
        if spec.type_name != message.DESCRIPTOR.full_name:
            raise TypeError(
                f"{spec.name} carries {spec.type_name}, not {message.DESCRIPTOR.full_name}"
            )
        if event_id is None and cause is not None:
            event_id = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{cause.event_id}/{spec.name}/{key}"))
        envelope = env.new_envelope(
            event_type=spec.type_name,
            source=self.settings.source,
            subject_pseudonym=subject_pseudonym,
            territory=territory if territory is not None else _territory_of(cause),
            experiment_id=experiment_id
            or (cause.experiment_id if cause else self.settings.experiment_id),
            schema_version=spec.schema_version,
            occurred_at=occurred_at,
            event_id=event_id,
            cause=cause,
        )
        partition = None
        if spec.partition_by:
            hashed = spec.partition_key(key.encode(), message)
            assert hashed is not None
            partition = expected_partition(hashed, spec.partitions)
        await self._send(
            spec, key, message.SerializeToString(), env.to_headers(envelope), partition
        )
        metrics.EVENTS_PRODUCED.labels(self.settings.service, spec.name, spec.type_name).inc()
        log.info("event.published", topic=spec.name, published_event_id=envelope.event_id)
        return envelope

    async def _send(
        self,
        spec: TopicSpec,
        key: str | bytes | None,
        value: bytes,
        headers: env.Headers,
        partition: int | None = None,
    ) -> None:
        pending = await self.topic(spec).send(
            key=key, value=value, headers=headers, partition=partition
        )
        # Wait for the broker's acknowledgement, in a handler too: a handler publishes its
        # events before it writes its table, so a crash in between redelivers the record,
        # and the events go out again under the same ids, never lost behind a state that
        # says they were sent.
        await pending

    def topics(self, *specs: TopicSpec) -> faust.TopicT:
        """One channel over several co-partitioned topics: an agent reading it handles their
        records one at a time, so it can be the single writer of a table they all change."""
        return self.app.topic(
            *(spec.name for spec in specs),
            key_type=bytes,
            key_serializer="raw",
            value_type=bytes,
            value_serializer="raw",
            internal=False,
        )

    async def process(self, records: faust.StreamT, spec: TopicSpec, handle: Handler) -> None:
        """Run `handle` on each valid event of `records`; set aside any record that fails."""
        async for record in records.events():
            await self._process_one(record, spec, handle)

    async def process_each(
        self, records: faust.StreamT, handlers: dict[TopicSpec, Handler]
    ) -> None:
        """Like `process`, for a channel over several topics: each has its own handler."""
        by_name = {spec.name: (spec, handle) for spec, handle in handlers.items()}
        async for record in records.events():
            spec, handle = by_name[record.message.topic]
            await self._process_one(record, spec, handle)

    async def _process_one(self, record: EventT, spec: TopicSpec, handle: Handler) -> None:
        self.handling += 1
        try:
            await self._process_record(record, spec, handle)
        finally:
            self.handling -= 1
            self.handled += 1

    async def _process_record(self, record: EventT, spec: TopicSpec, handle: Handler) -> None:
        message = record.message
        headers = env.header_map(message.headers)
        # Only a known type names a metric label: a header is sender-controlled text.
        claimed = headers.get(env.H_TYPE, b"").decode(errors="replace")
        event_type = claimed if claimed in KNOWN_TYPES else "unknown"
        labels = (self.settings.service, spec.name)
        metrics.EVENTS_CONSUMED.labels(*labels, event_type).inc()
        envelope: EventEnvelope | None = None
        started = time.perf_counter()
        key = (
            message.key.decode(errors="replace") if isinstance(message.key, bytes) else message.key
        )
        try:
            envelope = env.from_headers(headers)
            value = decode(spec, message.value)
            check_event(spec, envelope, value, key)
            check_partition(spec, message.key, message.partition, value)
        except Exception as exc:  # whatever a sender's bytes provoke: set aside, go on
            await self._dead_letter(record, *read_failure(exc), event_type)
            return
        event = Event(envelope, value, key, message.topic, message.partition, message.offset)
        with event_context(envelope, spec.name):
            try:
                await self._handle_with_retries(handle, event)
            except InvalidEventError as exc:
                await self._dead_letter(
                    record, DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT, str(exc), event_type
                )
                return
            except Exception as exc:
                reason = f"handler failed: {type(exc).__name__}: {exc}"
                log.error("event.handler_failed", error=type(exc).__name__)
                await self._dead_letter(
                    record, DeadLetterCause.DEAD_LETTER_CAUSE_HANDLER_FAILED, reason, event_type
                )
                return
            finally:
                metrics.HANDLER_SECONDS.labels(*labels).observe(time.perf_counter() - started)

    async def _handle_with_retries(self, handle: Handler, event: Event) -> None:
        for attempt in range(self.retries + 1):
            try:
                await handle(event)
                return
            except RetryableError as exc:
                if attempt == self.retries:
                    raise
                delay = 0.2 * 2**attempt
                log.warning("event.retrying", attempt=attempt + 1, delay_s=delay, error=str(exc))
                await asyncio.sleep(delay)

    async def _dead_letter(self, record: EventT, cause: int, reason: str, event_type: str) -> None:
        message = record.message
        key = message.key if isinstance(message.key, bytes) else (message.key or "").encode()
        await self.dead_letter_raw(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=key or None,
            value=message.value,
            headers=env.header_map(message.headers),
            cause=cause,
            reason=reason,
            event_type=event_type,
        )

    async def dead_letter_raw(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: dict[str, bytes],
        cause: int,
        reason: str,
        event_type: str = "unknown",
        to_topic: str | None = None,
    ) -> None:
        """Set a record aside with its reason and place: on this service's dead-letter
        topic, or `to_topic` (a partner's own, for what the partner sent)."""
        letter = MessageDeadLettered(
            cause=cause,  # type: ignore[arg-type]
            reason=reason,
            consumer=self.settings.service,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            original_key=key or b"",
            original_value=value or b"",
            original_headers=headers,
            dead_lettered_at=env.timestamp(datetime.now(UTC)),
        )
        envelope = env.new_envelope(
            event_type=self.dead_letters.type_name,
            source=self.settings.source,
            subject_pseudonym="",
            territory=_original_territory(headers),
            experiment_id=self.settings.experiment_id,
            schema_version=self.dead_letters.schema_version,
            occurred_at=datetime.now(UTC),
        )
        if to_topic is None:
            await self._send(
                self.dead_letters, key or None, letter.SerializeToString(), env.to_headers(envelope)
            )
        else:
            await self.forward(to_topic, key, letter.SerializeToString(), env.to_headers(envelope))
        cause_name = DeadLetterCause.Name(cause)  # type: ignore[arg-type]
        metrics.EVENTS_FAILED.labels(self.settings.service, topic, event_type, cause_name).inc()
        metrics.EVENTS_DEAD_LETTERED.labels(self.settings.service, topic).inc()
        log.warning(
            "event.dead_lettered",
            cause=cause_name,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
        )

    def raw_topic(self, name: str) -> faust.TopicT:
        """A topic outside the registry (a partner's), bytes in and out."""
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                name,
                key_type=bytes,
                key_serializer="raw",
                value_type=bytes,
                value_serializer="raw",
                internal=False,
            )
        return self._topics[name]

    async def forward(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: env.Headers,
        partition: int | None = None,
    ) -> None:
        """Send a record as it is (an event passed on to or from a partner); waits for the
        broker's acknowledgement."""
        pending = await self.raw_topic(topic).send(
            key=key, value=value, headers=headers, partition=partition
        )
        await pending


def _territory_of(cause: EventEnvelope | None) -> Territory.ValueType:
    if cause is None or not cause.territory:
        raise ValueError("an event without a cause must name its territory")
    return cause.territory


def _original_territory(headers: dict[str, bytes]) -> Territory.ValueType:
    # A dead letter keeps the territory of the record it sets aside, when it had a valid one.
    code = headers.get(env.H_TERRITORY, b"").decode(errors="replace")
    return env.TERRITORY_CODES.get(code, Territory.TERRITORY_UNSPECIFIED)


# Kept here for the services not yet on the kernel.
__all__ = ["Bus", "Event", "Fact", "RetryableError", "read_failure"]
