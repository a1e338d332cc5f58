"""Protobuf messages built straight from the simulator's proto3-JSON dicts.

`json_format.ParseDict` walks descriptors and checks every value on every call: a quarter
of the CPU of a live record at 5,000 records/s. The simulator's dicts are its own and well
formed, so each message type gets a table of field converters, built once from its
descriptor, and the message is made by one constructor call. Anything the table does not
know (a field name, a oneof of messages, a map) falls back to `ParseDict`, so the bytes
are the same either way (tests/unit/simulate/test_encode.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

Convert = Callable[[Any], Any]


class _Unsupported(Exception):
    """A value the table cannot convert: ParseDict will."""


def _timestamp(text: str) -> Timestamp:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise _Unsupported(text)
    return Timestamp(seconds=int(moment.timestamp() // 1), nanos=moment.microsecond * 1000)


def _duration(text: str) -> Duration:
    if not text.endswith("s"):
        raise _Unsupported(text)
    seconds = float(text[:-1])
    whole = int(seconds)
    return Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def _enum(field: FieldDescriptor) -> Convert:
    assert field.enum_type is not None  # an enum field has its type
    numbers = {value.name: value.number for value in field.enum_type.values}

    def convert(name: Any) -> int:
        try:
            return numbers[name] if isinstance(name, str) else int(name)
        except KeyError:
            raise _Unsupported(name) from None

    return convert


def _float(value: Any) -> float:
    if isinstance(value, str):  # "NaN", "Infinity": ParseDict's spelling
        raise _Unsupported(value)
    return float(value)


def _int(value: Any) -> int:
    return int(value)  # proto3 JSON writes 64-bit integers as strings


def _same(value: Any) -> Any:
    return value


def _converter(field: FieldDescriptor) -> Convert:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        message_type = field.message_type
        assert message_type is not None  # a message field has its type
        if message_type.GetOptions().map_entry:
            raise _Unsupported(field.name)
        full_name = message_type.full_name
        if full_name == "google.protobuf.Timestamp":
            return _timestamp
        if full_name == "google.protobuf.Duration":
            return _duration
        if full_name.startswith("google.protobuf."):
            raise _Unsupported(full_name)
        nested = message_factory.GetMessageClass(message_type)
        return lambda value: _build(nested, value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum(field)
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _float
    if field.type == FieldDescriptor.TYPE_BYTES:
        raise _Unsupported(field.name)  # base64 in JSON
    if field.cpp_type in (
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT64,
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_UINT32,
    ):
        return _int
    return _same  # string, bool


def _repeated(convert: Convert) -> Convert:
    return lambda values: [convert(value) for value in values]


@cache
def _table(descriptor: Descriptor) -> dict[str, tuple[str, Convert]] | None:
    table: dict[str, tuple[str, Convert]] = {}
    try:
        for field in descriptor.fields:
            convert = _converter(field)
            # The JSON name and the field name both reach the same field, as in ParseDict.
            if field.is_repeated:
                convert = _repeated(convert)
            table[field.name] = table[field.json_name] = (field.name, convert)
    except _Unsupported:
        return None
    return table


def _build(message_class: type[Message], value: dict[str, Any]) -> Message:
    table = _table(message_class.DESCRIPTOR)
    if table is None or not isinstance(value, dict):
        raise _Unsupported(message_class.DESCRIPTOR.full_name)
    fields = {}
    for name, item in value.items():
        known = table.get(name)
        if known is None:
            raise _Unsupported(name)
        fields[known[0]] = known[1](item)
    return message_class(**fields)


def build(message_class: type[Message], value: dict[str, Any]) -> Message:
    """The message `value` (proto3 JSON) describes, as `json_format.ParseDict` would make it."""
    try:
        return _build(message_class, value)
    except (_Unsupported, TypeError, ValueError, OverflowError):
        # Unusual input: ParseDict decides, and says what is wrong with it.
        return json_format.ParseDict(value, message_class())
