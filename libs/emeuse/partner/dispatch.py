"""One feed record -> its handler, retried with backoff, or set aside on the dead-letter topic.

Pure of Kafka clients: the record comes in as a `Record`, dead letters go out through any
`Sender` (aiokafka's producer, or a fake in tests), and waiting goes through `pause`, so a
shutdown can interrupt a backoff without dead-lettering anything. A record no handler can
be given (unreadable by the client, an invalid envelope, an undecodable value) is also
reported to the app's `on_unreadable` hook, by its place and reason, never its content.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

import structlog
from google.protobuf.message import DecodeError, Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.partner.metrics import PartnerMetrics
from emeuse.partner.settings import RetryPolicy
from emeuse.partners import dead_letter_topic
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered, RawHeader
from emeuse.runtime import envelope as env
from emeuse.runtime.identifying import identifier_kind
from emeuse.runtime.unreadable import Unreadable
from emeuse.runtime.withholding import identifier_in, withhold

log = structlog.get_logger("emeuse.partner")
REASON_LIMIT = 1000
DEAD_LETTER_TYPE = MessageDeadLettered.DESCRIPTOR.full_name
DEAD_LETTER_VERSION = MessageDeadLettered.DESCRIPTOR.file.package.rsplit(".", 1)[-1]

HandlerFunc = Callable[[EventEnvelope, Any], Awaitable[None]]
# Waits `seconds`; returns False when the app is stopping (the wait was cut short).
Pause = Callable[[float], Awaitable[bool]]
# The partner's hook for a record no handler could be given (where it is and why).
UnreadableHook = Callable[[Unreadable], Awaitable[None]]


class Reject(Exception):
    """Raise in a handler to set the event aside at once, without retries: for an event the
    partner will never be able to handle (its reason goes in the dead letter)."""


class Outcome(Enum):
    HANDLED = "handled"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead_lettered"
    # Stopping during a backoff: not handled, not committed, read again after a restart.
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Handler:
    message_type: type[Message]
    func: HandlerFunc

    @property
    def type_name(self) -> str:
        return self.message_type.DESCRIPTOR.full_name


@dataclass(frozen=True)
class Record:
    """A Kafka record as any client gives it; header keys are bytes only when it was read
    raw (a key that is not UTF-8)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str | bytes, bytes | None]]


class Sender(Protocol):
    """What the dispatcher needs of a producer (aiokafka's `send_and_wait`)."""

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...


class Dispatcher:
    def __init__(
        self,
        *,
        partner_id: str,
        experiment_id: str,
        handlers: Mapping[str, Handler],
        sender: Sender,
        metrics: PartnerMetrics,
        retry: RetryPolicy,
        pause: Pause,
        on_unreadable: UnreadableHook | None = None,
    ) -> None:
        self.partner_id = partner_id
        self.experiment_id = experiment_id
        self.handlers = dict(handlers)
        self.sender = sender
        self.metrics = metrics
        self.retry = retry
        self.pause = pause
        self.on_unreadable = on_unreadable
        self.dead_letters = dead_letter_topic(partner_id)

    def _label(self, claimed: str) -> str:
        # ce_type is sender-controlled text: only a handled type names a metric label.
        return claimed if claimed in self.handlers else "other"

    async def dispatch(self, record: Record) -> Outcome:
        """Handle one record; returns once it may be committed (or INTERRUPTED).

        Raises only when a dead letter cannot be written: the record must then not be
        committed, and the app stops.
        """
        headers = readable_headers(record.headers)
        claimed = headers.get(env.H_TYPE, b"").decode(errors="replace")
        label = self._label(claimed)
        self.metrics.received.labels(self.partner_id, label).inc()
        position = {"partition": record.partition, "offset": record.offset}
        handler = self.handlers.get(claimed)
        if claimed and handler is None:
            self.metrics.skipped.labels(self.partner_id, label).inc()
            log.debug("event.skipped", **position)
            return Outcome.SKIPPED
        try:
            envelope = env.from_headers(headers)
        except env.EnvelopeError as exc:
            cause = DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_ENVELOPE
            await self._dead_letter(record, headers, cause, str(exc), label)
            await self._report(record, f"invalid envelope: {exc}")
            return Outcome.DEAD_LETTERED
        assert handler is not None  # a record without ce_type fails from_headers
        message = handler.message_type()
        try:
            message.ParseFromString(record.value or b"")
        except DecodeError as exc:
            reason = f"value is not a {handler.type_name}: {exc}"
            cause = DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE
            await self._dead_letter(record, headers, cause, reason, label)
            await self._report(record, reason)
            return Outcome.DEAD_LETTERED
        ids = {"event_id": envelope.event_id, "correlation_id": envelope.correlation_id}
        with structlog.contextvars.bound_contextvars(type=claimed, **ids, **position):
            return await self._handle(record, headers, handler, envelope, message, label)

    async def set_aside_unreadable(self, record: Record, reason: str) -> None:
        """A record the Kafka client could not read (what could be read of it raw): counted,
        dead-lettered, reported; the caller then moves past it. Raises, like `dispatch`, only
        when the dead letter cannot be written."""
        self.metrics.unreadable.labels(self.partner_id).inc()
        log.warning(
            "event.unreadable",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )
        cause = DeadLetterCause.DEAD_LETTER_CAUSE_UNREADABLE
        await self._dead_letter(record, readable_headers(record.headers), cause, reason, "other")
        await self._report(record, reason)

    async def _report(self, record: Record, reason: str) -> None:
        if self.on_unreadable is None:
            return
        place = Unreadable(record.topic, record.partition, record.offset, reason[:REASON_LIMIT])
        try:
            await self.on_unreadable(place)
        except Exception as exc:  # the partner's hook never stops the feed
            log.warning("unreadable.hook_failed", error=type(exc).__name__)

    async def _handle(
        self,
        record: Record,
        headers: dict[str, bytes],
        handler: Handler,
        envelope: EventEnvelope,
        message: Message,
        label: str,
    ) -> Outcome:
        started = time.perf_counter()
        attempts = self.retry.retries + 1
        try:
            for attempt in range(attempts):
                try:
                    await handler.func(envelope, message)
                except Reject as exc:
                    self.metrics.failed.labels(self.partner_id, label).inc()
                    reason = f"rejected by the handler: {exc}"
                    cause = DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT
                    await self._dead_letter(record, headers, cause, reason, label)
                    return Outcome.DEAD_LETTERED
                except Exception as exc:
                    self.metrics.failed.labels(self.partner_id, label).inc()
                    # The exception's text may quote the event: logs get its type only.
                    if attempt + 1 == attempts:
                        reason = (
                            f"handler failed after {attempts} attempt(s): "
                            f"{type(exc).__name__}: {exc}"
                        )
                        cause = DeadLetterCause.DEAD_LETTER_CAUSE_HANDLER_FAILED
                        await self._dead_letter(record, headers, cause, reason, label)
                        return Outcome.DEAD_LETTERED
                    delay = self.retry.delay(attempt)
                    log.warning(
                        "event.retrying",
                        attempt=attempt + 1,
                        delay_s=delay,
                        error=type(exc).__name__,
                    )
                    if not await self.pause(delay):
                        log.info("event.interrupted", attempt=attempt + 1)
                        return Outcome.INTERRUPTED
                else:
                    self.metrics.handled.labels(self.partner_id, label).inc()
                    log.debug("event.handled")
                    return Outcome.HANDLED
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.handler_seconds.labels(self.partner_id, label).observe(elapsed)
        raise AssertionError("unreachable: the last attempt returns")

    async def _dead_letter(
        self,
        record: Record,
        headers: dict[str, bytes],
        cause: DeadLetterCause.ValueType,
        reason: str,
        label: str,
    ) -> None:
        letter = dead_letter_for(
            record, headers, cause, reason, consumer=f"partner/{self.partner_id}"
        )
        envelope = env.new_envelope(
            event_type=DEAD_LETTER_TYPE,
            source=f"partner/{self.partner_id}",
            subject_pseudonym="",
            territory=_territory(headers),
            experiment_id=self.experiment_id,
            schema_version=DEAD_LETTER_VERSION,
            occurred_at=datetime.now(UTC),
        )
        await self.sender.send_and_wait(
            self.dead_letters,
            value=letter.SerializeToString(),
            # A withheld original's key may be what names someone: the letter goes unkeyed.
            key=None if letter.original_withheld else record.key,
            headers=env.to_headers(envelope),
        )
        cause_name = DeadLetterCause.Name(cause)
        self.metrics.dead_lettered.labels(self.partner_id, label, cause_name).inc()
        log.warning(
            "event.dead_lettered",
            cause=cause_name,
            withheld=letter.original_withheld,
            source_partition=record.partition,
            source_offset=record.offset,
        )


def dead_letter_for(
    record: Record,
    headers: dict[str, bytes],
    cause: DeadLetterCause.ValueType,
    reason: str,
    *,
    consumer: str,
) -> MessageDeadLettered:
    """The original key, value and headers byte for byte, so the record can be replayed;
    unless the record holds a direct identifier: then only its size and SHA-256 are kept
    (as the platform's own dead letters do), and the reason says why."""
    letter = MessageDeadLettered(
        cause=cause,
        reason=reason[:REASON_LIMIT],
        consumer=consumer,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        original_key=record.key or b"",
        original_value=record.value or b"",
        original_headers=headers,
        original_raw_headers=raw_headers(record.headers),
        dead_lettered_at=env.timestamp(datetime.now(UTC)),
    )
    kind = identifier_in(record.key, record.value, (value for _, value in record.headers))
    if kind is not None:
        withhold(letter, record.value or b"")
        if identifier_kind(letter.reason) is not None:
            # A handler's error text may quote the event: only its first words are kept.
            letter.reason = reason.split(":", 1)[0]
            if identifier_kind(letter.reason) is not None:
                letter.reason = DeadLetterCause.Name(cause)
        letter.reason = f"{letter.reason}; original withheld: it holds a direct identifier ({kind})"
    return letter


def readable_headers(headers: Sequence[tuple[str | bytes, bytes | None]]) -> dict[str, bytes]:
    """The headers whose key is text (every one, unless the record was read raw)."""
    readable: dict[str, bytes] = {}
    for name, value in headers:
        if isinstance(name, bytes):
            try:
                name = name.decode("utf-8")
            except UnicodeDecodeError:
                continue
        readable[name] = value or b""
    return readable


def raw_headers(headers: Sequence[tuple[str | bytes, bytes | None]]) -> list[RawHeader]:
    """The headers whose key is not UTF-8, byte for byte (a dead letter's raw headers)."""
    raw = []
    for name, value in headers:
        if isinstance(name, bytes):
            try:
                name.decode("utf-8")
            except UnicodeDecodeError:
                raw.append(RawHeader(key=name, value=value or b""))
    return raw


def _territory(headers: dict[str, bytes]) -> Territory.ValueType:
    code = headers.get(env.H_TERRITORY, b"").decode(errors="replace")
    return env.TERRITORY_CODES.get(code, Territory.TERRITORY_UNSPECIFIED)
