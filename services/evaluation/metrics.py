"""What the evaluation service measures, beside the kernel's own metrics."""

from prometheus_client import Counter

FOLDED = Counter(
    "emeuse_evaluation_events_folded_total",
    "Events added to the indicators, by topic (counted when their batch commits).",
    ["topic"],
)
