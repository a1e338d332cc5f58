"""A consumed record as one JSON object: where it was, its headers and its decoded event."""

from __future__ import annotations

import base64
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from emeuse.partners import PARTNER_ID
from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from emeuse.registry import UnknownTopicError, by_name, for_type
from emeuse.runtime import envelope as env

# A partner's own topics (emeuse.partners): created per partner, so not in the registry.
PARTNER_TOPIC = re.compile(r"^emeuse-partner\.([a-z][a-z0-9-]{2,31})\.(feed|inbound|dead-letter)$")


def partner_topic(topic: str) -> tuple[str, str] | None:
    """(partner id, kind) of a partner's topic; None for any other name."""
    match = PARTNER_TOPIC.fullmatch(topic)
    if match is None or not PARTNER_ID.fullmatch(match.group(1)):
        return None
    return match.group(1), match.group(2)


def message_for(topic: str, event_type: str) -> Message:
    """An empty message of the type `topic` carries: the registry's, or for a partner's
    feed and inbound (several types) the one its ce_type header names; UnknownTopicError."""
    kind = partner_topic(topic)
    if kind is None:
        return by_name(topic).message()
    if kind[1] == "dead-letter":
        return MessageDeadLettered()
    specs = for_type(event_type)  # UnknownTopicError for a type the registry does not know
    return specs[0].message()


def describe(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, headers: Any
) -> dict[str, Any]:
    """Never raises: a record that does not decode is shown with an "error" field."""
    raw_headers = env.header_map(headers)
    shown: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key.decode(errors="replace") if key is not None else None,
        "headers": {name: _text_or_base64(value) for name, value in sorted(raw_headers.items())},
    }
    shown["type"] = raw_headers.get(env.H_TYPE, b"").decode(errors="replace")
    try:
        message = message_for(topic, shown["type"])
    except UnknownTopicError as exc:
        shown["error"] = str(exc)
        return shown
    try:
        message.ParseFromString(value or b"")
    except DecodeError as exc:
        shown["error"] = f"value is not a {message.DESCRIPTOR.full_name}: {exc}"
        shown["value_base64"] = base64.b64encode(value or b"").decode()
        return shown
    # Every field shown, zeros included: an offset or partition 0 is information.
    shown["event"] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    if isinstance(message, MessageDeadLettered):
        # The id of the event set aside: what its sender knows it by.
        event_id = message.original_headers.get(env.H_ID)
        if event_id:
            shown["original_event_id"] = event_id.decode(errors="replace")
        original = _original(message)
        if original is not None:
            shown["original_event"] = original
    return shown


def _original(letter: MessageDeadLettered) -> dict[str, Any] | None:
    """The set-aside event decoded, when its type is known and its bytes are that type."""
    try:
        event_type = letter.original_headers.get(env.H_TYPE, b"").decode()
        message = message_for(letter.source_topic, event_type)
        message.ParseFromString(letter.original_value)
    except (UnknownTopicError, DecodeError, UnicodeDecodeError):
        return None
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _text_or_base64(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()
