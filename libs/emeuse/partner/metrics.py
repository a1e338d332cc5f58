"""Prometheus metrics every partner app exposes, labelled by partner and event type.

A separate `CollectorRegistry` can be given (tests); by default they join the process's
default registry, served on /metrics by `emeuse partner run`.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class PartnerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.received = Counter(
            "emeuse_partner_events_received_total",
            "Records read from the partner's feed, by the type named in ce_type.",
            ["partner", "type"],
            registry=registry,
        )
        self.handled = Counter(
            "emeuse_partner_events_handled_total",
            "Events a handler completed.",
            ["partner", "type"],
            registry=registry,
        )
        self.skipped = Counter(
            "emeuse_partner_events_skipped_total",
            "Events of a type the app has no handler for (committed, not handled).",
            ["partner", "type"],
            registry=registry,
        )
        self.failed = Counter(
            "emeuse_partner_handler_failures_total",
            "Handler attempts that raised, retried ones included.",
            ["partner", "type"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "emeuse_partner_events_dead_lettered_total",
            "Records set aside on the partner's dead-letter topic, by cause.",
            ["partner", "type", "cause"],
            registry=registry,
        )
        self.unreadable = Counter(
            "emeuse_partner_records_unreadable_total",
            "Feed records the Kafka client could not read (a header key not UTF-8, a corrupt"
            " batch): dead-lettered, reported to on_unreadable and passed.",
            ["partner"],
            registry=registry,
        )
        self.published = Counter(
            "emeuse_partner_events_published_total",
            "Events the partner published on its inbound topic.",
            ["partner", "type"],
            registry=registry,
        )
        self.handler_seconds = Histogram(
            "emeuse_partner_handler_seconds",
            "Time a handler took, retries included.",
            ["partner", "type"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
            registry=registry,
        )
        self.lag = Gauge(
            "emeuse_partner_consumer_lag",
            "Records in a feed partition not yet committed by the partner's consumer group.",
            ["partner", "topic", "partition"],
            registry=registry,
        )


@cache
def default_metrics() -> PartnerMetrics:
    """One set per process: prometheus refuses the same name twice in a registry."""
    return PartnerMetrics()
