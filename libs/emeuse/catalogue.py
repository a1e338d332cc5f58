"""The event catalogue partners read (docs/catalogue.md), generated so it cannot drift.

Topics, keys, retention and "when emitted" come from the registry; meanings from the
comments in proto/ (compiled with their source info by grpc_tools' protoc); the example
of each event is built from its descriptor and printed as proto3 JSON. The output is
deterministic: `scripts/catalogue.py --check` (in `make lint`) compares it with the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from emeuse import partners
from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from emeuse.registry import (
    AXES,
    OWNERS,
    TOPICS,
    TopicSpec,
    authority_reason,
    partner_feedable,
    partner_publishable,
)
from emeuse.runtime.codec import missing_fields

# protobuf's stubs type DESCRIPTOR as a union of its pure-Python and upb classes.
Descriptor = Any
EnumDescriptor = Any

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
OUTPUT = ROOT / "docs" / "catalogue.md"

EXAMPLE_TIME = "2027-03-01T08:00:00Z"
EXAMPLE_DURATION = "1800s"
# A pseudonym that names nobody, the same on every run: "psn-" and 32 base32 characters.
EXAMPLE_PSEUDONYM = "psn-" + (
    base64.b32encode(hashlib.sha256(b"e-meuse catalogue").digest()[:20]).decode().lower()
)
# Values chosen so one example reads as one plausible story: a glucose reading in Meuse.
STRINGS = {
    "loinc_code": "2339-0",
    "unit": "mg/dL",
    "territory": "55",
    "source_topic": "emeuse.chronic.reading-recorded.v1",
    "consumer": "chronic",
    "goes_to_bed_at": "22:30",
    "wakes_at": "07:00",
    "readable_event_types": "emeuse.chronic.v1.ReadingRecorded",
    "publishable_event_types": "emeuse.chronic.v1.ReadingRecorded",
    "experiments": "pilot-2027",
    "channel": "sms",
    "partner_id": "glucoflow",
    "purpose": "remote-monitoring",
    "purposes": "remote-monitoring",
    "emeuse.chronic.v1.AlertRaised.reason": "2339-0 262 mg/dL above high 250",
    "emeuse.chronic.v1.AlertUpdated.reason": "2339-0 262 mg/dL above high 250",
}
# Used when the field's comment gives no example ("e.g. ...").
FALLBACK_STRINGS = {
    "reason_code": "chronic.alert.critical",
    "specialty": "",
    "referral_specialty": "cardiology",
    "language": "fr",
}
# Flags shown false: true would tell another story (a point-of-care result awaits the lab).
FALSE = {"point_of_care"}
NUMBERS = {
    "value": 262.0,
    "low": 70.0,
    "high": 250.0,
    "critical_low": 54.0,
    "critical_high": 400.0,
    "target_low": 80.0,
    "target_high": 180.0,
    "latitude": 49.16,
    "longitude": 5.38,
    "distance_km": 12.5,
    "battery_percent": 80.0,
    "temperature_celsius": 19.5,
    "confidence": 0.9,
    "age_band_to": 54,
    "gir_level": 4,
    # A lab's correction that raised the example alert (262 above high 250).
    "previous_value": 180.0,
    "corrected_value": 262.0,
}
# Enums whose first value would tell another story than the examples' (Meuse).
ENUMS = {"emeuse.place.v1.Territory": "TERRITORY_MEUSE"}
E_G = re.compile(r"(?:e\.g\.|such as)\s+\"([^\"]+)\"")
E_G_NUMBER = re.compile(r"e\.g\.\s+(-?[0-9]+(?:\.[0-9]+)?)")
SCALAR_NAMES = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
}
HEADERS = (
    ("ce_specversion", "always `1.0`"),
    ("ce_id", "unique id of the event; a redelivered record keeps it (dedupe on it)"),
    ("ce_type", "full protobuf name of the value, e.g. `emeuse.chronic.v1.ReadingRecorded`"),
    ("ce_source", "who originated it: `emeuse/<service>` or `partner/<id>`"),
    ("ce_time", "when it happened (RFC 3339, UTC)"),
    ("ce_recordedtime", "when the platform recorded it"),
    ("ce_subject", "pseudonym of the person concerned (`psn-...`), when there is one"),
    ("ce_territory", "département code: `55` Meuse, `52` Haute-Marne, `54` Meurthe-et-Moselle"),
    ("ce_experiment", "experiment that produced it"),
    ("ce_correlationid", "id shared by an event and everything it caused"),
    ("ce_causationid", "id of the event that caused this one, if any"),
    ("ce_schemaversion", "version of the message's package, e.g. `v1`"),
    ("content-type", "`application/protobuf`: the value is the bare protobuf message"),
    (
        "emeuse_replay",
        "on a partner's feed only: the id of the replay that sent this event again (the "
        "envelope's `replay_id`); absent on an event delivered live",
    ),
)


class Comments:
    """Leading comments of every message, field, enum and enum value, by full name."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        self.text: dict[str, str] = {}
        for file in files:
            self._add_file(file)

    def __getitem__(self, full_name: str) -> str:
        return self.text.get(full_name, "")

    def _add_file(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        names: dict[tuple[int, ...], str] = {}
        prefix = file.package

        def messages(
            items: Iterable[descriptor_pb2.DescriptorProto], path: tuple[int, ...], scope: str
        ) -> None:
            for i, message in enumerate(items):
                name = f"{scope}.{message.name}"
                here = (*path, i)
                names[here] = name
                for j, field in enumerate(message.field):
                    names[(*here, 2, j)] = f"{name}.{field.name}"
                messages(message.nested_type, (*here, 3), name)
                enums(message.enum_type, (*here, 4), name)

        def enums(
            items: Iterable[descriptor_pb2.EnumDescriptorProto], path: tuple[int, ...], scope: str
        ) -> None:
            for i, enum in enumerate(items):
                name = f"{scope}.{enum.name}"
                names[(*path, i)] = name
                for j, value in enumerate(enum.value):
                    # Enum values are scoped like siblings of their enum (protobuf C++ rule).
                    names[(*path, i, 2, j)] = f"{scope}.{value.name}"

        messages(file.message_type, (4,), prefix)
        enums(file.enum_type, (5,), prefix)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name and location.leading_comments:
                self.text[name] = " ".join(location.leading_comments.split())


def load_comments(proto_dir: Path = PROTO_DIR) -> Comments:
    # A dev dependency (untyped): only documentation needs it.
    from grpc_tools import protoc  # type: ignore[import-untyped]

    well_known = Path(protoc.__file__).parent / "_proto"
    files = sorted(str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        status = protoc.main(
            [
                "protoc",
                f"-I{proto_dir}",
                f"-I{well_known}",
                "--include_source_info",
                f"--descriptor_set_out={out}",
                *files,
            ]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed on {proto_dir} (status {status})")
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return Comments(descriptor_set.file)


# Example messages ----------------------------------------------------------------------


def _string_example(field: FieldDescriptor, comment: str) -> str:
    name = field.name
    for known in (field.full_name, name):
        if known in STRINGS:
            return STRINGS[known]
    if name.endswith("_pseudonym"):
        return EXAMPLE_PSEUDONYM
    quoted = E_G.search(comment)
    if quoted:
        return quoted.group(1)
    if name in FALLBACK_STRINGS:
        return FALLBACK_STRINGS[name]
    stem = re.sub(r"_(id|ids)$", "", name)
    if stem != name or name.endswith("_by") or name.endswith("_from"):
        return f"{stem.replace('_', '-')}-0001"
    return f"example-{name.replace('_', '-')}"


def _scalar_example(field: FieldDescriptor, comment: str) -> object:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _string_example(field, comment)
    if kind == FieldDescriptor.TYPE_BOOL:
        return field.name not in FALSE
    if kind == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(f"example {field.name}".encode()).decode()
    if kind == FieldDescriptor.TYPE_ENUM:
        enum: EnumDescriptor = field.enum_type
        if enum.full_name in ENUMS:
            return ENUMS[enum.full_name]
        values = [v for v in enum.values if v.number != 0]
        return (values or list(enum.values))[0].name
    number = NUMBERS.get(field.name)
    if number is None:
        found = E_G_NUMBER.search(comment)
        number = float(found.group(1)) if found else 1
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return float(number)
    whole = int(number)
    # proto3 JSON writes 64-bit integers as strings.
    return (
        str(whole) if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64) else whole
    )


def _message_example(descriptor: Descriptor, comments: Comments, depth: int = 0) -> object:
    if descriptor.full_name == "google.protobuf.Timestamp":
        return EXAMPLE_TIME
    if descriptor.full_name == "google.protobuf.Duration":
        return EXAMPLE_DURATION
    example: dict[str, object] = {}
    if depth > 4:
        return example
    for field in descriptor.fields:
        comment = comments[field.full_name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if field.name == "original_headers":
                header = base64.b64encode(b"emeuse.chronic.v1.ReadingRecorded").decode()
                example[field.name] = {"ce_type": header}
            elif value_field.type == FieldDescriptor.TYPE_STRING:
                example[field.name] = {"name": "value"}
            else:
                example[field.name] = {"name": _field_value(value_field, comments, depth + 1, "")}
            continue
        single = _field_value(field, comments, depth + 1, comment)
        example[field.name] = [single] if field.is_repeated else single
    return example


def _field_value(field: FieldDescriptor, comments: Comments, depth: int, comment: str) -> object:
    if field.message_type is not None:
        return _message_example(field.message_type, comments, depth)
    return _scalar_example(field, comment)


def example_message(spec: TopicSpec, comments: Comments) -> Message:
    """A plausible, valid event of the topic's type (every field set, required ones too)."""
    data = _message_example(spec.message.DESCRIPTOR, comments)
    assert isinstance(data, dict)
    return json_format.ParseDict(data, spec.message())


def example_json(spec: TopicSpec, comments: Comments) -> str:
    message = example_message(spec, comments)
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return json.dumps(data, indent=2, ensure_ascii=False)


# The document -------------------------------------------------------------------------


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def _type_name(field: FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields
        return f"map<{_type_name(key)}, {_type_name(value)}>"
    if field.message_type is not None:
        name = field.message_type.full_name
        base = f"[`{name}`](#{_anchor(name)})" if name.startswith("emeuse.") else f"`{name}`"
    elif field.enum_type is not None:
        name = field.enum_type.full_name
        base = f"[`{name}`](#{_anchor(name)})"
    else:
        base = f"`{SCALAR_NAMES[field.type]}`"
    return f"repeated {base}" if field.is_repeated else base


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _fields_table(descriptor: Descriptor, comments: Comments, required: Iterable[str] = ()) -> str:
    needed = set(required)
    rows = ["| # | field | type | meaning |", "|---|---|---|---|"]
    for field in descriptor.fields:
        mark = " (required)" if field.name in needed else ""
        rows.append(
            f"| {field.number} | `{field.name}`{mark} | {_type_name(field)} | "
            f"{_cell(comments[field.full_name])} |"
        )
    return "\n".join(rows)


def _referenced(specs: Iterable[TopicSpec]) -> tuple[list[Descriptor], list[EnumDescriptor]]:
    """Every emeuse message and enum the events use, transitively, in a stable order."""
    messages: dict[str, Descriptor] = {}
    enums: dict[str, EnumDescriptor] = {}
    roots = {spec.type_name for spec in specs}

    def visit(descriptor: Descriptor) -> None:
        for field in descriptor.fields:
            if field.enum_type is not None and field.enum_type.full_name.startswith("emeuse."):
                enums.setdefault(field.enum_type.full_name, field.enum_type)
            child = field.message_type
            if child is None or not child.full_name.startswith("emeuse."):
                continue
            if child.GetOptions().map_entry:
                visit(child)
                continue
            if child.full_name not in messages and child.full_name not in roots:
                messages[child.full_name] = child
                visit(child)

    for spec in specs:
        visit(spec.message.DESCRIPTOR)
    return (
        [messages[name] for name in sorted(messages)],
        [enums[name] for name in sorted(enums)],
    )


def _kept(spec: TopicSpec) -> str:
    if spec.compacted:
        return "compacted (latest per key)"
    if spec.retention_days is None:
        return "forever"
    return f"{spec.retention_days} days"


def _partition_by(spec: TopicSpec) -> str:
    """The field that picks the partition, as the partitioner hashes it."""
    if spec.partition_format == "{}":
        return f"`{spec.partition_by}`"
    return f"`{spec.partition_format.format('<' + str(spec.partition_by) + '>')}` (murmur2)"


def _subject(spec: TopicSpec) -> str:
    if spec.subject == "":
        return "none (concerns no person)"
    return f"`{spec.subject_field}`"


def _topic_section(spec: TopicSpec, comments: Comments) -> str:
    missing = missing_fields(spec, example_message(spec, comments))
    if missing:
        raise AssertionError(f"the example of {spec.type_name} lacks {missing}")
    lines = [
        f"### {spec.name}",
        "",
        "| | |",
        "|---|---|",
        f"| emitted when | {_cell(spec.description)} |",
        f"| message | [`{spec.type_name}`](../{_proto_path(spec)}) |",
        f"| key | `{_cell(spec.key)}` |",
        f"| ce_subject | {_subject(spec)} |",
        f"| partitions | {spec.partitions}"
        + (f", by {_partition_by(spec)}" if spec.partition_by else "")
        + " |",
        f"| kept | {_kept(spec)} |",
        f"| written by | `{spec.owner}` |",
        f"| partner feed | {'yes' if partner_feedable(spec) else 'no'} |",
        *_partner_publish(spec),
        "",
        f"**{spec.message.DESCRIPTOR.name}**: {comments[spec.type_name]}",
        "",
        _fields_table(spec.message.DESCRIPTOR, comments, spec.required),
        "",
        "Example (proto3 JSON, as `emeuse publish` takes and `emeuse tail` shows it):",
        "",
        "```json",
        example_json(spec, comments),
        "```",
        "",
    ]
    return "\n".join(lines)


def _partner_publish(spec: TopicSpec) -> list[str]:
    """Whether a partner may be granted publishing it: for the axes' topics, with why not
    when only the service writes it (registry.SERVICE_AUTHORITY)."""
    if spec.owner not in AXES or spec.is_dead_letter:
        return []
    if partner_publishable(spec):
        return ["| partner may publish | yes |"]
    return [
        f"| partner may publish | no: only `{spec.owner}` writes it ({authority_reason(spec)}) |"
    ]


def _proto_path(spec: TopicSpec) -> str:
    return f"proto/{spec.message.DESCRIPTOR.file.name}"


def render(comments: Comments | None = None) -> str:
    comments = comments or load_comments()
    out = [
        "<!-- Generated by `make docs` (scripts/catalogue.py) from libs/emeuse/registry.py and",
        "     the comments in proto/. Do not edit: `make lint` fails when this file differs. -->",
        "",
        "# Event catalogue",
        "",
        "Every topic on the e-Meuse bus: the one message type it carries, its key, how long",
        "it is kept, when its events are emitted, what each field means and an example.",
        'A partner reads, on its own feed topic, the events of the topics marked "partner',
        'feed: yes" (keyed by a person), only for patients who consent (see',
        "[partners.md](partners.md)); the types it may read are granted by operations.",
        "",
        "## Headers of every record",
        "",
        "The value is the bare protobuf message; the metadata travels in headers",
        "(CloudEvents Kafka binding, binary mode), so a consumer routes without decoding.",
        "",
        "| header | meaning |",
        "|---|---|",
        *(f"| `{name}` | {meaning} |" for name, meaning in HEADERS),
        "",
        "## A partner's topics",
        "",
        "| topic | what |",
        "|---|---|",
        f"| `{partners.feed_topic('glucoflow')}` | "
        f"{partners.feed_topic.__doc__ or ''} Events of several types: route on `ce_type`. |",
        f"| `{partners.inbound_topic('glucoflow')}` | {partners.inbound_topic.__doc__ or ''} |",
        f"| `{partners.dead_letter_topic('glucoflow')}` | "
        f"{partners.dead_letter_topic.__doc__ or ''} Values are "
        f"[`emeuse.platform.v1.MessageDeadLettered`](#emeuseplatformv1messagedeadlettered). |",
        f"| consumer groups `{partners.consumer_group_prefix('glucoflow')}*` | "
        f"{partners.consumer_group_prefix.__doc__ or ''} |",
        "",
        "(`glucoflow` stands for the partner's id.)",
        "",
        "## Topics",
        "",
        "| topic | message | key | kept |",
        "|---|---|---|---|",
        *(
            f"| [{spec.name}](#{_anchor(spec.name)}) | `{spec.type_name}` | `{_cell(spec.key)}` "
            f"| {_kept(spec)} |"
            for spec in TOPICS
        ),
        "",
    ]
    for owner in OWNERS:
        owned = [spec for spec in TOPICS if spec.owner == owner]
        out += [f"## {owner}", ""]
        out += [_topic_section(spec, comments) for spec in owned]
    messages, enums = _referenced(TOPICS)
    out += ["## Value types", "", "Messages used inside events.", ""]
    for descriptor in [*messages, MessageDeadLettered.DESCRIPTOR]:
        out += [
            f"### {descriptor.full_name}",
            "",
            comments[descriptor.full_name],
            "",
            _fields_table(descriptor, comments),
            "",
        ]
    out += ["## Enums", ""]
    for enum in enums:
        scope = enum.full_name.rsplit(".", 1)[0]
        out += [f"### {enum.full_name}", "", comments[enum.full_name], ""]
        out += ["| value | meaning |", "|---|---|"]
        out += [
            f"| `{value.name}` | {_cell(comments[f'{scope}.{value.name}'])} |"
            for value in enum.values
        ]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
