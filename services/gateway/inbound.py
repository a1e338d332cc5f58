"""Checking what a partner publishes before the platform consumes it.

A partner writes only its inbound topic (the broker's ACLs); the gateway lets an event
through to the platform's topic when the registry grants the partner its type, the type is
not one only its service writes (registry.SERVICE_AUTHORITY, whatever the grant), the bytes
are that type and keep the topic's rules, and the experiment is one of the partner's;
an event about a person needs that person's consent to the partner (`consented`).
The source header is stamped `partner/<id>`, whatever the partner wrote there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.registry import TopicSpec, UnknownTopicError, authority_reason, for_type
from emeuse.runtime.codec import InvalidEventError, NoConsentError, check_event, decode
from services.gateway.domain.consent import ConsentBook

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Admitted:
    spec: TopicSpec
    message: Message
    envelope: EventEnvelope


def partner_of_inbound(topic: str) -> str:
    """`emeuse-partner.<id>.inbound` -> `<id>`."""
    return topic.split(".")[1]


def admit(
    partner_id: str,
    partner: PartnerRegistered | None,
    envelope: EventEnvelope,
    value: bytes | None,
    key: str | None,
    now: datetime,
) -> Admitted:
    """The platform topic, message and stamped envelope; InvalidEventError says why not."""
    if partner is None:
        raise InvalidEventError(f"partner {partner_id!r} is not registered, or was removed")
    # Consent is judged at the event's time: a partner may not date events ahead.
    if envelope.occurred_at.ToDatetime(tzinfo=UTC) > now + CLOCK_SKEW:
        raise InvalidEventError("ce_time is in the future")
    if envelope.event_type not in partner.publishable_event_types:
        raise InvalidEventError(
            f"event type {envelope.event_type} is not granted to partner {partner_id!r}"
        )
    try:
        [spec] = [s for s in for_type(envelope.event_type) if not s.is_dead_letter]
    except (UnknownTopicError, ValueError):
        raise InvalidEventError(f"event type {envelope.event_type} has no platform topic") from None
    # Whatever the registry says: a grant written by hand, or given before the type became
    # the service's own, must not let a partner set a care plan or resolve an alert.
    reason = authority_reason(spec)
    if reason is not None:
        raise InvalidEventError(
            f"{spec.name} is written by the {spec.owner} service only ({reason}); "
            "no partner may publish it, whatever its grants say"
        )
    message = decode(spec, value)
    # No experiment granted: nothing may be published (an empty list is not "any").
    if envelope.experiment_id not in partner.experiments:
        raise InvalidEventError(
            f"experiment {envelope.experiment_id!r} is not one of partner {partner_id!r}"
        )
    stamped = EventEnvelope()
    stamped.CopyFrom(envelope)
    stamped.source = f"partner/{partner_id}"
    check_event(spec, stamped, message, key)
    return Admitted(spec, message, stamped)


def person_of(admitted: Admitted) -> str | None:
    """The pseudonym of the person the event is about (its subject field, which
    `check_event` made equal to ce_subject); None for an event about no person (a
    practitioner's registration, a campaign, a territory's availability)."""
    field = admitted.spec.subject_field
    if field not in admitted.message.DESCRIPTOR.fields_by_name:
        return None
    return str(getattr(admitted.message, field)) or None


def consented(
    partner: PartnerRegistered, admitted: Admitted, book_of: Callable[[str], ConsentBook]
) -> None:
    """NoConsentError, with the reason, unless the person the event is about consents to
    the partner for one of its purposes, covering when the event happened (ce_time)."""
    person = person_of(admitted)
    if person is None:
        return
    happened = admitted.envelope.occurred_at.ToDatetime(tzinfo=UTC)
    reason = book_of(person).refuses_inbound(partner.partner_id, list(partner.purposes), happened)
    if reason is not None:
        raise NoConsentError(reason)
