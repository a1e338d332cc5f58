"""`emeuse publish`: proto3 JSON in, a validated event with full headers out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import json_format
from google.protobuf.message import Message

from emeuse.cli.errors import CliError
from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.registry import TopicSpec, UnknownTopicError, by_name, for_type
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import InvalidEventError, check_event


@dataclass(frozen=True)
class Outgoing:
    spec: TopicSpec
    key: str | None
    value: bytes
    headers: env.Headers
    envelope: EventEnvelope
    message: Message


def choose_topic(event_type: str, topic: str | None) -> TopicSpec:
    try:
        specs = for_type(event_type)
        if topic is not None:
            spec = by_name(topic)
            if spec not in specs:
                raise CliError(f"topic {topic} carries {spec.type_name}, not {event_type}")
            return spec
    except UnknownTopicError as exc:
        raise CliError(str(exc)) from None
    if len(specs) > 1:
        names = ", ".join(spec.name for spec in specs)
        raise CliError(
            f"{event_type} is carried by several topics ({names}); choose one with --topic"
        )
    return specs[0]


def parse_message(spec: TopicSpec, text: str) -> Message:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--json is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise CliError(f"--json must be a JSON object with the fields of {spec.type_name}")
    try:
        return json_format.Parse(text, spec.message())
    except json_format.ParseError as exc:
        detail = " ".join(str(exc).split())
        raise CliError(f"--json is not a valid {spec.type_name}: {detail}") from None


def build_event(
    *,
    event_type: str,
    json_text: str,
    subject: str | None,
    territory: str | None,
    experiment: str | None,
    key: str | None,
    topic: str | None,
    source: str,
    occurred_at: datetime | None = None,
) -> Outgoing:
    """Validate everything the user gave and build the record; raises CliError."""
    spec = choose_topic(event_type, topic)
    message = parse_message(spec, json_text)
    fields = message.DESCRIPTOR.fields_by_name
    entity = spec.record_key(message)
    person = getattr(message, spec.subject_field) if spec.subject_field in fields else None
    subject = subject if subject is not None else person
    key = key if key is not None else (entity or None)
    if territory is None:
        raise CliError("no territory: give --territory (52, 54 or 55) or set EMEUSE_TERRITORY")
    if not experiment:
        raise CliError("no experiment: give --experiment or set EMEUSE_EXPERIMENT")
    try:
        envelope = env.new_envelope(
            event_type=spec.type_name,
            source=source,
            subject_pseudonym=subject or "",
            territory=env.territory_from_code(territory),
            experiment_id=experiment,
            schema_version=spec.schema_version,
            occurred_at=occurred_at or datetime.now(UTC),
        )
        check_event(spec, envelope, message, key)
    except (env.EnvelopeError, InvalidEventError) as exc:
        raise CliError(str(exc)) from None
    return Outgoing(
        spec, key, message.SerializeToString(), env.to_headers(envelope), envelope, message
    )
