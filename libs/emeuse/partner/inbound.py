"""Publishing on the partner's inbound topic: the event with the platform's envelope headers.

The platform checks inbound events against the registry (allowed type, schema, source)
before it consumes them; the same checks run here first, so a partner learns of a bad
event from an exception rather than from its dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.partners import inbound_topic
from emeuse.registry import UnknownTopicError, for_type
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import InvalidEventError, check_event


class PublishError(ValueError):
    """An event the platform would refuse from this partner; the message says why."""


@dataclass(frozen=True)
class InboundRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    envelope: EventEnvelope


def inbound_record(
    partner_id: str,
    message: Message,
    *,
    territory: str | None = None,
    experiment_id: str | None = None,
    occurred_at: datetime | None = None,
    cause: EventEnvelope | None = None,
    event_id: str | None = None,
) -> InboundRecord:
    """The record to send for `message`: key and ce_subject from the registry's key field,
    source `partner/<id>`; territory and experiment default to those of the cause."""
    type_name = message.DESCRIPTOR.full_name
    try:
        spec = for_type(type_name)[0]
    except UnknownTopicError as exc:
        raise PublishError(str(exc)) from None
    try:
        if territory is not None:
            territory_value = env.territory_from_code(territory)
        elif cause is not None and cause.territory:
            territory_value = cause.territory
        else:
            raise PublishError("no territory: give territory='55' (or 52, 54) or a cause")
        experiment = experiment_id or (cause.experiment_id if cause else "")
        if not experiment:
            raise PublishError("no experiment: give experiment_id or a cause")
        fields = message.DESCRIPTOR.fields_by_name
        subject = str(getattr(message, spec.subject_field)) if spec.subject_field in fields else ""
        key = spec.record_key(message)
        envelope = env.new_envelope(
            event_type=type_name,
            source=f"partner/{partner_id}",
            subject_pseudonym=subject,
            territory=territory_value,
            experiment_id=experiment,
            schema_version=spec.schema_version,
            occurred_at=occurred_at or datetime.now(UTC),
            event_id=event_id,
            cause=cause,
        )
        check_event(spec, envelope, message, key)
    except (env.EnvelopeError, InvalidEventError) as exc:
        raise PublishError(str(exc)) from None
    return InboundRecord(
        topic=inbound_topic(partner_id),
        key=key.encode() if key else None,
        value=message.SerializeToString(),
        headers=env.to_headers(envelope),
        envelope=envelope,
    )
