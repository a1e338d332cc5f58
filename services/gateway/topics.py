"""What the gateway reads: every event topic partners may be fed from, the consents, and
the partners' inbound topics."""

from __future__ import annotations

from emeuse.registry import CONSENT_CHANGED, TOPICS, TopicSpec, partner_feedable

# Inbound topics are created per partner: followed by name pattern, new ones included.
INBOUND_PATTERN = r"^emeuse-partner\.[a-z][a-z0-9-]{2,31}\.inbound$"


def source_topics() -> tuple[TopicSpec, ...]:
    """Event topics keyed by a person's pseudonym: co-partitioned with the consents, so
    one partition task sees a patient's consents and events in order (registry.partner_feedable)."""
    return tuple(spec for spec in TOPICS if partner_feedable(spec))


READS = (CONSENT_CHANGED, *source_topics())
