"""What the gateway reads and writes: every event topic partners may be fed from, the
consents, the partners' topics, and the axes' topics partners publish to. Its Kafka ACLs
are drawn from KAFKA (emeuse.runtime.acls)."""

from __future__ import annotations

from emeuse.registry import (
    CARE_PLAN_UPDATED,
    CONSENT_CHANGED,
    EVENT_SHARED,
    PARTNER_REGISTERED,
    SERVICES,
    TOPICS,
    TopicSpec,
    dead_letter_topic,
    partner_feedable,
    partner_publishable,
)
from emeuse.runtime.acls import KafkaUse

# Inbound topics are created per partner: followed by name pattern, new ones included.
INBOUND_PATTERN = r"^emeuse-partner\.[a-z][a-z0-9-]{2,31}\.inbound$"
# The group following them (admission.py): one of the service's own, `emeuse-gateway-…`.
INBOUND_GROUP = "emeuse-gateway-inbound"


def source_topics() -> tuple[TopicSpec, ...]:
    """Event topics keyed by a person's pseudonym: co-partitioned with the consents, so
    one partition task sees a patient's consents and events in order (registry.partner_feedable)."""
    return tuple(spec for spec in TOPICS if partner_feedable(spec))


def refusal_topics() -> tuple[TopicSpec, ...]:
    """The services' dead letters, where a partner's event refused after admission lands
    (refusals.py). Not the gateway's own: what it refuses it reports itself, and reading
    its own output would loop."""
    return tuple(dead_letter_topic(s) for s in SERVICES if s != "gateway")


# The kernel's inputs (processing.processor).
READS = (CONSENT_CHANGED, *source_topics(), *refusal_topics())
# Consents (gRPC) and the partners' admitted events (admission.py), on the axes' topics.
# What each feed was given (processing.record_shared), for the evaluation.
WRITES = (
    CONSENT_CHANGED,
    EVENT_SHARED,
    *(spec for spec in TOPICS if partner_publishable(spec)),
)
# What every instance reads whole: the partner registry (directory.py), the consents
# the inbound admission checks (consent_follower.py), and the care plans placing each
# patient in a territory for a coordinator's RecordConsent (runtime/care_teams.py).
FOLLOWS = (PARTNER_REGISTERED, CONSENT_CHANGED, CARE_PLAN_UPDATED)

KAFKA = KafkaUse("gateway", reads=READS, writes=WRITES, follows=FOLLOWS, partner_topics=True)
