"""What the kernel measures, per service and partition task."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCH_RECORDS = Histogram(
    "emeuse_kernel_batch_records",
    "Records handled in one transaction of a partition task.",
    ["service"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
HANDLE_SECONDS = Histogram(
    "emeuse_kernel_handle_seconds",
    "Time spent in handlers for one batch.",
    ["service"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
COMMIT_SECONDS = Histogram(
    "emeuse_kernel_commit_seconds",
    "Time to send a batch's outputs, changelog and offsets and commit its transaction.",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
TRANSACTIONS = Counter(
    "emeuse_kernel_transactions_total",
    "Transactions of partition tasks, by outcome (committed, aborted, fenced).",
    ["service", "outcome"],
)
RECOVERY_SECONDS = Histogram(
    "emeuse_kernel_recovery_seconds",
    "Time from a partition's assignment to its task processing (fence, changelog tail, timers).",
    ["service"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RECOVERED_RECORDS = Counter(
    "emeuse_kernel_recovered_records_total",
    "Changelog records read back into partition stores at recovery.",
    ["service"],
)
UNREADABLE_RECORDS = Counter(
    "emeuse_kernel_unreadable_records_total",
    "Records the Kafka client could not read (a header key not UTF-8, a corrupt batch),"
    " dead-lettered and skipped.",
    ["service", "topic"],
)
TIMERS_FIRED = Counter(
    "emeuse_kernel_timers_fired_total",
    "Timers that came due and were handled.",
    ["service"],
)
TIMER_LATENESS = Histogram(
    "emeuse_kernel_timer_lateness_seconds",
    "Time from a timer's deadline to its handling.",
    ["service"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TIMERS_PENDING = Gauge(
    "emeuse_kernel_timers_pending",
    "Keys with a deadline, per partition task.",
    ["service", "partition"],
)
ASSIGNED = Gauge(
    "emeuse_kernel_assigned_partitions",
    "Partition tasks this instance runs.",
    ["service"],
)
