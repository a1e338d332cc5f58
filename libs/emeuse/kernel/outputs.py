"""The records a service writes: events with their envelope, and dead letters that always fit.

Pure functions, shared by the kernel (outputs of a transaction) and the gRPC edge (events a
call publishes), so an event is built the same way wherever it starts.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Required, TypedDict

from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered, RawHeader
from emeuse.registry import TopicSpec
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.withholding import identifier_in, withhold

EVENT_ID_NAMESPACE = uuid.UUID("6f1c1f4e-2b1e-4c55-9d55-e3e05e000055")
# The broker refuses records over message.max.bytes (~1 MiB by default); a dead letter
# wrapping a record near that size keeps this much of it, with the size and hash of the rest.
DEAD_LETTER_MAX_BYTES = 900_000
# An output over this would be refused by the producer (max_request_size, 1 MiB, less the
# batch's own bytes) at commit, and the whole batch with it, again on every retry.
OUTPUT_MAX_BYTES = 1_000_000


class OutputTooLargeError(ValueError):
    """A handler made a record the broker would refuse: its input is dead-lettered instead
    of the partition's transactions failing on it forever."""


@dataclass(frozen=True)
class OutRecord:
    """One record to send: where, its key, value and headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: env.Headers
    partition: int | None = None


def checked_size(record: OutRecord) -> OutRecord:
    size = len(record.value) + len(record.key or b"")
    size += sum(len(name) + len(value or b"") for name, value in record.headers)
    if size > OUTPUT_MAX_BYTES:
        raise OutputTooLargeError(
            f"a record for {record.topic} would be {size:,} bytes (at most {OUTPUT_MAX_BYTES:,})"
        )
    return record


@dataclass(frozen=True)
class Origin:
    """Who writes: ce_source, and the experiment of events that have no cause."""

    service: str
    source: str
    experiment_id: str


class EventFields(TypedDict, total=False):
    """What a publisher says of an event besides its message: the keywords of
    event_record, which Tx.publish, the gRPC edge's Publisher and calls.Publishes pass on."""

    key: Required[str]
    subject_pseudonym: Required[str]
    occurred_at: Required[datetime]
    cause: EventEnvelope | None
    territory: Territory.ValueType | None
    experiment_id: str | None
    event_id: str | None


def derived_event_id(cause: EventEnvelope, topic: str, key: str) -> str:
    """A caused event's id: the same on every attempt, so a retried input never makes two."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{cause.event_id}/{topic}/{key}"))


def event_record(
    origin: Origin,
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
) -> tuple[OutRecord, EventEnvelope]:
    """The record of one event and its envelope; an event without an id and with a cause
    gets a derived id."""
    if spec.type_name != message.DESCRIPTOR.full_name:
        raise TypeError(f"{spec.name} carries {spec.type_name}, not {message.DESCRIPTOR.full_name}")
    if event_id is None and cause is not None:
        event_id = derived_event_id(cause, spec.name, key)
    envelope = env.new_envelope(
        event_type=spec.type_name,
        source=origin.source,
        subject_pseudonym=subject_pseudonym,
        territory=territory if territory is not None else _territory_of(cause),
        experiment_id=experiment_id or (cause.experiment_id if cause else origin.experiment_id),
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
    record = OutRecord(
        spec.name, key.encode(), message.SerializeToString(), env.to_headers(envelope), partition
    )
    return record, envelope


@dataclass(frozen=True)
class SetAside:
    """A record that could not be processed: where it was, what it held, and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[bytes | str, bytes | None], ...]
    cause: int
    reason: str


def dead_letter_record(
    origin: Origin,
    spec: TopicSpec,
    aside: SetAside,
    *,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
    topic: str | None = None,
) -> OutRecord:
    """A MessageDeadLettered for `aside`, on `spec`'s topic (or `topic`, a partner's own).

    Never larger than `max_bytes`: a longer original is cut, and its size and SHA-256 kept.
    A record refused for identifying content keeps only its size and SHA-256: a direct
    identifier is never stored in clear, not even among dead letters."""
    readable: dict[str, bytes] = {}
    raw: list[RawHeader] = []
    for name, value in aside.headers:
        if isinstance(name, str):
            readable[name] = value or b""
            continue
        try:
            readable[name.decode("utf-8")] = value or b""
        except UnicodeDecodeError:
            raw.append(RawHeader(key=name, value=value or b""))
    key = aside.key or b""
    value = aside.value or b""
    letter = MessageDeadLettered(
        cause=aside.cause,  # type: ignore[arg-type]
        reason=aside.reason[:2000],
        consumer=origin.service,
        source_topic=aside.topic,
        source_partition=aside.partition,
        source_offset=aside.offset,
        original_key=key,
        original_value=value,
        original_headers=readable,
        original_raw_headers=raw,
        dead_lettered_at=env.timestamp(datetime.now(UTC)),
    )
    if aside.cause == DeadLetterCause.DEAD_LETTER_CAUSE_IDENTIFYING_CONTENT:
        withhold(letter, value)
    elif (kind := identifier_in(aside.key, aside.value, (v for _, v in aside.headers))) is not None:
        # Refused for another reason first (a missing field, a bad header), it still names
        # someone: withheld all the same, the reason saying why.
        withhold(letter, value)
        letter.reason = (
            f"{letter.reason[:1800]}; original withheld: it holds a direct identifier ({kind})"
        )
    elif letter.ByteSize() > max_bytes:
        letter.truncated = True
        letter.original_value_size = len(value)
        letter.original_value_sha256 = hashlib.sha256(value).digest()
        letter.original_key = key[:1024]
        room = max(0, max_bytes - (letter.ByteSize() - len(value)) - 64)
        letter.original_value = value[:room]
        if letter.ByteSize() > max_bytes:  # the headers themselves are huge: keep none
            letter.ClearField("original_headers")
            del letter.original_raw_headers[:]
            room = max(0, max_bytes - (letter.ByteSize() - len(letter.original_value)) - 64)
            letter.original_value = value[:room]
    envelope = env.new_envelope(
        event_type=spec.type_name,
        source=origin.source,
        subject_pseudonym="",
        territory=_original_territory(readable),
        experiment_id=origin.experiment_id,
        schema_version=spec.schema_version,
        occurred_at=datetime.now(UTC),
    )
    return OutRecord(
        topic or spec.name,
        letter.original_key or None,
        letter.SerializeToString(),
        env.to_headers(envelope),
    )


def _territory_of(cause: EventEnvelope | None) -> Territory.ValueType:
    if cause is None or not cause.territory:
        raise ValueError("an event without a cause must name its territory")
    return cause.territory


def _original_territory(headers: dict[str, bytes]) -> Territory.ValueType:
    # A dead letter keeps the territory of the record it sets aside, when it had a valid one.
    code = headers.get(env.H_TERRITORY, b"").decode(errors="replace")
    return env.TERRITORY_CODES.get(code, Territory.TERRITORY_UNSPECIFIED)
