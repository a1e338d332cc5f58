"""A consumed record as one JSON object: where it was, its headers and its decoded event."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from emeuse.registry import UnknownTopicError, by_name
from emeuse.runtime import envelope as env


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
    try:
        spec = by_name(topic)
    except UnknownTopicError as exc:
        shown["error"] = str(exc)
        return shown
    shown["type"] = raw_headers.get(env.H_TYPE, b"").decode(errors="replace")
    message = spec.message()
    try:
        message.ParseFromString(value or b"")
    except DecodeError as exc:
        shown["error"] = f"value is not a {spec.type_name}: {exc}"
        shown["value_base64"] = base64.b64encode(value or b"").decode()
        return shown
    # Every field shown, zeros included: an offset or partition 0 is information.
    shown["event"] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return shown


def _text_or_base64(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()
