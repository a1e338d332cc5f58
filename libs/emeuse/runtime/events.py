"""What a handler is given and what it decides: plain values, no stream framework."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause
from emeuse.registry import TopicSpec
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import (
    InvalidEventError,
    NoConsentError,
    UndecodableError,
    check_event,
    check_partition,
    decode,
)
from emeuse.runtime.id_rules import IdentifyingContentError


@dataclass(frozen=True)
class Event:
    """A decoded, validated event with its envelope and where it was read."""

    envelope: EventEnvelope
    message: Any
    key: str | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Fact:
    """An event a use case decided to publish: its topic, message and (derived) id."""

    spec: TopicSpec
    message: Message
    event_id: str


def read_event(spec: TopicSpec, record: Any, headers: Mapping[str, bytes]) -> Event:
    """A consumed record (`headers`: its headers as a dict) decoded and checked as every
    consumer of the platform's topics checks it: envelope, message, contract and id rules,
    key, subject and partition. Whatever is wrong raises what read_failure names: the kernel
    dead-letters it, a directory following a topic (care_teams.py) skips it alike."""
    raw_key = record.key
    key = raw_key.decode(errors="replace") if isinstance(raw_key, bytes) else raw_key
    envelope = env.from_headers(headers)
    message = decode(spec, record.value)
    check_event(spec, envelope, message, key)
    check_partition(spec, raw_key, record.partition, message)
    return Event(envelope, message, key, record.topic, record.partition, record.offset)


class RetryableError(Exception):
    """A handler failure worth retrying (a peer briefly unavailable)."""


def read_failure(exc: Exception) -> tuple[int, str]:
    """Dead-letter cause and reason for a record that could not be read."""
    if isinstance(exc, IdentifyingContentError):  # first: the original must be withheld
        return DeadLetterCause.DEAD_LETTER_CAUSE_IDENTIFYING_CONTENT, str(exc)
    if isinstance(exc, env.EnvelopeError):
        return DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_ENVELOPE, str(exc)
    if isinstance(exc, UndecodableError):  # before InvalidEventError, its base
        return DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE, str(exc)
    if isinstance(exc, NoConsentError):  # likewise
        return DeadLetterCause.DEAD_LETTER_CAUSE_NO_CONSENT, str(exc)
    if isinstance(exc, InvalidEventError):
        return DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT, str(exc)
    reason = f"record could not be read: {type(exc).__name__}: {exc}"
    return DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE, reason
