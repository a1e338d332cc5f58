"""Publishing on the partner's inbound topic: the event with the platform's envelope headers.

The gateway checks every inbound event before the platform uses it. What can be checked
here runs first, so a partner learns of those faults from PublishError rather than from its
dead letters: the type has a platform topic, is granted and the experiment is the
partner's (when the settings file lists them), required fields, pseudonyms, envelope and
key. The owning service's domain rules (a reading's measure range and unit) and whether the
partner is still registered are the gateway's alone.
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
from emeuse.runtime.pseudonym import is_pseudonym


class PublishError(ValueError):
    """An event the platform would refuse from this partner; the message says why."""


@dataclass(frozen=True)
class Grants:
    """What the settings file says the partner may publish, and its experiments."""

    publishes: frozenset[str]
    experiments: tuple[str, ...]

    def check(self, partner_id: str, type_name: str, experiment: str) -> None:
        if type_name not in self.publishes:
            granted = ", ".join(sorted(self.publishes)) or "none"
            raise PublishError(
                f"{type_name} is not granted to partner {partner_id!r} for publishing "
                f"(granted: {granted}); operations grant it with `emeuse partner grant`"
            )
        if experiment not in self.experiments:
            raise PublishError(
                f"experiment {experiment!r} is not one of partner {partner_id!r} "
                f"({', '.join(self.experiments) or 'none'})"
            )


def check_pseudonyms(message: Message) -> None:
    """Every field naming a person holds a platform pseudonym, never anything else."""
    for field in message.DESCRIPTOR.fields:
        if field.name.endswith("_pseudonym") and field.type == field.TYPE_STRING:
            value = getattr(message, field.name)
            values = list(value) if field.is_repeated else [value]
            for one in values:
                if one and not is_pseudonym(one):
                    raise PublishError(
                        f"{field.name} is not a platform pseudonym (psn- and 32 letters "
                        "or digits 2-7): never a name or an identifier"
                    )


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
    grants: Grants | None = None,
) -> InboundRecord:
    """The record to send for `message`: key and ce_subject from the registry's key field,
    source `partner/<id>`; territory and experiment default to those of the cause.
    PublishError for what the gateway would refuse and can be known here; `grants` (from
    the settings file) adds the grant and experiment checks."""
    type_name = message.DESCRIPTOR.full_name
    try:
        [spec] = [s for s in for_type(type_name) if not s.is_dead_letter]
    except (UnknownTopicError, ValueError):
        raise PublishError(f"{type_name} has no platform topic: it cannot be published") from None
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
        if grants is not None:
            grants.check(partner_id, type_name, experiment)
        check_pseudonyms(message)
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
