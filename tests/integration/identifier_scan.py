"""Where a direct identifier hides in what the platform wrote: every text of a record (key,
headers, each string of its decoded value, a dead letter's original included) and every
log line, run through the one detector (emeuse.runtime.identifying).

A finding names where and what kind, never the value: a failing scan must not print what it
looks for.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from emeuse.kernel.framing import unpack
from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from emeuse.registry import UnknownTopicError, by_name, for_type
from emeuse.runtime.identifying import NAME, identifier_kind, identifier_kinds

# Records a test wrote on purpose as a hostile sender (tests/integration/test_identifiers.py):
# the platform cannot unwrite a sender's record; what it writes itself is what is scanned.
HOSTILE_SOURCE = b"partner/hostile-probe"
# A log event's message and traceback: a library's prose ("Group Coordinator Request
# failed"), capitalised words that are no name; every other kind is still looked for there.
PROSE = {"line.event", "line.exception"}
# A line gRPC's C core writes itself ("I1207 03:30:46.943623 30914 chttp2_transport.cc:1403]
# ... Debug Text: Server shutdown", when a peer restarts): its prose, like a log event's.
_GRPC_CORE_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w./-]+\.cc:\d+\] ")
# Printable runs of a value that is neither protobuf of a known type nor JSON.
_TEXT_RUN = re.compile(r"[^\x00-\x1f\x7f\ufffd]{4,}")


# (topic, partition, offset) of a record.
Position = tuple[str, int, int]


@dataclass(frozen=True)
class Finding:
    where: str
    kind: str


def record_texts(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str | bytes, bytes | None]],
    poison: Collection[Position] = (),
) -> Iterator[tuple[str, str]]:
    """(where, text) of every text a record carries; a dead letter's original when it is
    not one of the `poison` records (written on purpose by a test, see findings_in_record)."""
    header_map = {_text(name): raw or b"" for name, raw in headers}
    if key:
        yield "key", key.decode(errors="replace")
    for name, raw in header_map.items():
        yield f"header {name}", raw.decode(errors="replace")
    event_type = header_map.get("ce_type", b"").decode(errors="replace")
    yield from value_texts(topic, event_type, value, poison)


def _text(name: str | bytes) -> str:
    return name.decode(errors="replace") if isinstance(name, bytes) else name


def value_texts(
    topic: str, event_type: str, value: bytes | None, poison: Collection[Position] = ()
) -> Iterator[tuple[str, str]]:
    if not value:
        return
    message = _decoded(topic, event_type, value)
    if message is None:
        yield from _loose_texts("value", value)
        return
    yield from message_texts(message, "value")
    if isinstance(message, MessageDeadLettered) and source_of(message) not in poison:
        yield from _dead_letter_texts(message)


def source_of(letter: MessageDeadLettered) -> Position:
    return letter.source_topic, letter.source_partition, letter.source_offset


def _dead_letter_texts(letter: MessageDeadLettered) -> Iterator[tuple[str, str]]:
    yield "original key", letter.original_key.decode(errors="replace")
    for name, raw in letter.original_headers.items():
        yield f"original header {name}", raw.decode(errors="replace")
    for raw_header in letter.original_raw_headers:
        yield "original raw header", raw_header.value.decode(errors="replace")
    event_type = letter.original_headers.get("ce_type", b"").decode(errors="replace")
    for where, text in value_texts(letter.source_topic, event_type, letter.original_value):
        yield f"original {where}", text


def _decoded(topic: str, event_type: str, value: bytes) -> Message | None:
    specs = []
    with contextlib.suppress(UnknownTopicError):
        specs.append(by_name(topic))
    with contextlib.suppress(UnknownTopicError, ValueError):
        specs.extend(for_type(event_type))
    for spec in specs:
        message = spec.message()
        try:
            message.ParseFromString(value)
        except DecodeError:
            continue
        return message
    return None


def message_texts(message: Message, where: str) -> Iterator[tuple[str, str]]:
    """Every string of a message, at any depth (bytes fields as text)."""
    for field, content in message.ListFields():
        path = f"{where}.{field.name}"
        values = content if field.is_repeated else [content]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = [*content.keys(), *content.values()]
        for item in values:
            if isinstance(item, Message):
                yield from message_texts(item, path)
            elif field.type == FieldDescriptor.TYPE_BYTES and isinstance(item, bytes):
                if not isinstance(message, MessageDeadLettered):  # its originals: see above
                    yield from _loose_texts(path, item)
            elif isinstance(item, str):
                yield path, item


def _loose_texts(where: str, raw: bytes) -> Iterator[tuple[str, str]]:
    """JSON strings (a table's changelog, lz4-compressed when large), else the printable
    runs of the bytes."""
    with contextlib.suppress(Exception):  # not compressed after all: read as it is
        raw = unpack(raw)
    text = raw.decode(errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        for run in _TEXT_RUN.findall(text):
            yield where, run
        return
    yield from _json_texts(data, where)


def _json_texts(data: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, str):
        yield where, data
    elif isinstance(data, dict):
        for name, item in data.items():
            yield f"{where}.{name}", str(name)
            yield from _json_texts(item, f"{where}.{name}")
    elif isinstance(data, list):
        for item in data:
            yield from _json_texts(item, where)


def findings_in_record(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str | bytes, bytes | None]],
    poison: Collection[Position] = (),
) -> list[Finding]:
    """What names a person in one record. `poison`: where a test wrote poison records on
    purpose (the chaos rounds' random bytes, a header key that is not UTF-8): those records
    and the originals their dead letters keep are not the platform's writing, and are left
    out by position only; every other text, their dead letters' reasons included, is scanned."""
    headers = list(headers)
    if dict(headers).get("ce_source") == HOSTILE_SOURCE or (topic, partition, offset) in poison:
        return []
    found = []
    for where, text in record_texts(topic, key, value, headers, poison):
        kind = identifier_kind(text)
        if kind is not None:
            found.append(Finding(f"{topic}[{partition}]@{offset} {where}", kind))
    return found


def findings_in_log(path: Path) -> list[Finding]:
    """Each line of a service's log: a JSON event's values, or the line as text."""
    found = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        try:
            texts = list(_json_texts(json.loads(line), "line"))
        except ValueError:
            texts = [("line.grpc-core" if _GRPC_CORE_LINE.match(line) else "line", line)]
        for where, text in texts:
            kinds = identifier_kinds(text)
            if where in PROSE or where == "line.grpc-core":
                kinds = [kind for kind in kinds if kind != NAME]
            if kinds:
                found.append(Finding(f"{path.name}:{number} {where}", kinds[0]))
    return found
