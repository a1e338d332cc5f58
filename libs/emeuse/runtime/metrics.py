"""Prometheus metrics every service exposes on its /metrics port."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

EVENTS_CONSUMED = Counter(
    "emeuse_events_consumed_total",
    "Records read from a topic, by the type named in ce_type.",
    ["service", "topic", "type"],
)
EVENTS_PRODUCED = Counter(
    "emeuse_events_produced_total",
    "Events a service published.",
    ["service", "topic", "type"],
)
EVENTS_FAILED = Counter(
    "emeuse_events_failed_total",
    "Records a service could not process, by cause; each went to the dead-letter topic.",
    ["service", "topic", "type", "cause"],
)
EVENTS_DEAD_LETTERED = Counter(
    "emeuse_events_dead_lettered_total",
    "Records written to the service's dead-letter topic.",
    ["service", "topic"],
)
HANDLER_SECONDS = Histogram(
    "emeuse_handler_seconds",
    "Time from a record's decoding to the end of its handler.",
    ["service", "topic"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_LAG = Gauge(
    "emeuse_consumer_lag",
    "Records in a partition not yet committed by the service's consumer group.",
    ["service", "topic", "partition"],
)
PARTITION_STALLS = Counter(
    "emeuse_partition_stalls_total",
    "Assigned input partitions found with records waiting and the consumer's position stuck,"
    " by what the watchdog did (resume, then rejoin).",
    ["service", "topic", "action"],
)
RECOVERY_STALLS = Counter(
    "emeuse_table_recovery_stalls_total",
    "Table recoveries that stopped reading their changelogs short of the end, so the worker"
    " asked its group to rebalance.",
    ["service"],
)
GRPC_REQUESTS = Counter(
    "emeuse_grpc_requests_total",
    "gRPC calls a service answered, refusals included, by method, status code and caller id"
    " (`unknown` when the call presented no known token).",
    ["service", "method", "code", "caller"],
)
GRPC_IN_FLIGHT = Gauge(
    "emeuse_grpc_calls_in_flight",
    "gRPC calls of the service's own API being answered now; at EMEUSE_GRPC_MAX_IN_FLIGHT a"
    " further call is refused (`RESOURCE_EXHAUSTED`, counted in emeuse_grpc_requests_total).",
    ["service"],
)
GRPC_SECONDS = Histogram(
    "emeuse_grpc_request_seconds",
    "Time from a gRPC call reaching the guard to its answer or refusal, by method (a call"
    " forwarded to the owning instance is timed on both).",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

AUDIT_RECORDS_WRITTEN = Counter(
    "emeuse_audit_records_written_total",
    "Audit records (a caller read or changed a person's data) the broker acknowledged.",
    ["service"],
)
AUDIT_RECORDS_FAILED = Counter(
    "emeuse_audit_records_failed_total",
    "Audit records that could not be written, by reason: `send` (the broker refused or did"
    " not answer), `full` (more records waiting than the writer holds) or `build` (a call's"
    " records could not be made).",
    ["service", "reason"],
)
TLS_CERTIFICATE_EXPIRY = Gauge(
    "emeuse_tls_certificate_expiry_timestamp_seconds",
    "When a certificate the service uses expires, in seconds since the epoch: `service` (the"
    " one its gRPC server presents, and as a client under mTLS) and `ca` (the CA it trusts)."
    " Set at start when gRPC TLS is on, and again when the service takes a renewed file.",
    ["service", "certificate"],
)


@lru_cache(maxsize=4096)
def labelled(metric: MetricWrapperBase, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once: labels() takes a lock and builds its key on
    every call, which a path run for every record feels (the kernel, chronic's readings).
    Bounded, as labels may come from input (a LOINC code); a child dropped with remove()
    must not be asked for here again."""
    return metric.labels(*labels)
