"""What the gateway reads: every event topic partners may be fed from, the consents, and
the partners' inbound topics."""

from __future__ import annotations

from emeuse.registry import (
    CONSENT_CHANGED,
    SERVICES,
    TOPICS,
    TopicSpec,
    dead_letter_topic,
    partner_feedable,
)

# Inbound topics are created per partner: followed by name pattern, new ones included.
INBOUND_PATTERN = r"^emeuse-partner\.[a-z][a-z0-9-]{2,31}\.inbound$"


def source_topics() -> tuple[TopicSpec, ...]:
    """Event topics keyed by a person's pseudonym: co-partitioned with the consents, so
    one partition task sees a patient's consents and events in order (registry.partner_feedable)."""
    return tuple(spec for spec in TOPICS if partner_feedable(spec))


def refusal_topics() -> tuple[TopicSpec, ...]:
    """The services' dead letters, where a partner's event refused after admission lands
    (refusals.py). Not the gateway's own: what it refuses it reports itself, and reading
    its own output would loop."""
    return tuple(dead_letter_topic(s) for s in SERVICES if s != "gateway")


READS = (CONSENT_CHANGED, *source_topics(), *refusal_topics())
