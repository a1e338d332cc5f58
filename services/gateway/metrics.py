"""What the gateway measures, beside the kernel's own metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FORWARDED = Counter(
    "emeuse_gateway_events_forwarded_total",
    "Events sent to a partner's feed, by partner and type.",
    ["partner", "type"],
)
WITHHELD = Counter(
    "emeuse_gateway_events_withheld_total",
    "Events of a type a partner may read, withheld: the patient's consent does not stand.",
    ["partner", "type"],
)
INVALID_WITHHELD = Counter(
    "emeuse_gateway_events_invalid_total",
    "Platform events withheld from every partner's feed: the owning service's stateless rules "
    "refuse them (it dead-letters them itself), by type and rule.",
    ["type", "rule"],
)
CONSENT_APPLIED = Histogram(
    "emeuse_gateway_consent_applied_seconds",
    "From a consent change (granted or withdrawn) to the gateway applying it to the feeds.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
INBOUND = Counter(
    "emeuse_gateway_inbound_total",
    "Events partners published: admitted to the platform, or refused to their dead letters.",
    ["partner", "outcome"],
)
REFUSALS_REPORTED = Counter(
    "emeuse_gateway_refusals_reported_total",
    "Partners' events a service refused after admission, copied to the partner's dead letters.",
    ["partner", "consumer"],
)
