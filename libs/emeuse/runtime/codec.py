"""Protobuf in and out of Kafka record values, with the topic's rules checked."""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2
from google.protobuf.message import DecodeError, Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.registry import TopicSpec
from emeuse.runtime.id_rules import IdentifyingContentError, IdRuleError, check_ids
from emeuse.runtime.identifying import identifier_kind


class InvalidEventError(ValueError):
    """A record whose value or envelope breaks its topic's contract."""


class NoConsentError(InvalidEventError):
    """A partner's event about a person who gives that partner no standing consent covering
    it: refused with its own dead-letter cause, so the partner can tell it from a bad event."""


class UndecodableError(InvalidEventError):
    """A value that is not the topic's protobuf message."""


class IdentifyingEventError(InvalidEventError, IdentifyingContentError):
    """An event whose id field or key holds a direct identifier: dead-lettered withheld."""


def decode(spec: TopicSpec, value: bytes | None) -> Message:
    if value is None:
        raise UndecodableError("record has no value (tombstone)")
    message = spec.message()
    try:
        message.ParseFromString(value)
    except DecodeError as exc:
        raise UndecodableError(f"value is not a {spec.type_name}: {exc}") from None
    return message


def check_event(
    spec: TopicSpec, envelope: EventEnvelope, message: Message, key: str | None
) -> None:
    """The envelope names the topic's type, the message has its required fields and keeps
    the id rules (no direct identifier), and the record key and subject are the entity the
    topic is keyed by (or tables would split it)."""
    if envelope.event_type != spec.type_name:
        raise InvalidEventError(
            f"ce_type {envelope.event_type!r} does not match topic type {spec.type_name}"
        )
    if envelope.schema_version and envelope.schema_version != spec.schema_version:
        raise InvalidEventError(
            f"ce_schemaversion {envelope.schema_version!r} is not {spec.schema_version}"
        )
    missing = missing_fields(spec, message)
    if missing:
        raise InvalidEventError(f"{spec.type_name} lacks required field(s) {', '.join(missing)}")
    try:
        check_ids(message)
    except IdentifyingContentError as exc:
        raise IdentifyingEventError(exc.field, exc.kind) from None
    except IdRuleError as exc:
        raise InvalidEventError(str(exc)) from None
    fields = message.DESCRIPTOR.fields_by_name
    expected_key = spec.record_key(message)
    if expected_key is not None and key != expected_key:
        kind = identifier_kind(key or "")
        if kind is not None:
            raise IdentifyingEventError("record key", kind)
        raise InvalidEventError(f"record key is not the event's {spec.key}")
    subject = spec.subject_field
    if subject in fields and envelope.subject_pseudonym != getattr(message, subject):
        raise InvalidEventError(f"ce_subject is not the event's {subject}")


def missing_fields(spec: TopicSpec, message: Message) -> list[str]:
    """The topic's required fields that `message` leaves unset."""
    return [name for name in spec.required if not _is_set(message, name)]


def _is_set(message: Message, name: str) -> bool:
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.message_type is not None and not field.is_repeated:
        return message.HasField(name)
    return bool(getattr(message, name))


@lru_cache(maxsize=200_000)
def expected_partition(key: bytes, partitions: int) -> int:
    """Partition Kafka's default partitioner (murmur2: Java, kafka-python, aiokafka) picks.
    Cached: murmur2 is pure Python, and the same keys (patients) come again and again."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def check_partition(
    spec: TopicSpec, key: bytes | None, partition: int, message: Message | None = None
) -> None:
    """Tables and routing assume a key's records are where the default partitioner put them
    (or, for a topic partitioned by a field, where that field's value hashes)."""
    hashed = spec.partition_key(key, message)
    if hashed is None:
        return
    expected = expected_partition(hashed, spec.partitions)
    if partition != expected:
        raise InvalidEventError(
            f"record is on partition {partition} but Kafka's default (murmur2) partitioner "
            f"puts its key on {expected}; produce with the murmur2 partitioner"
        )
