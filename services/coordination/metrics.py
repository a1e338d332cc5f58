"""What the coordination service measures, beside the kernel's own metrics."""

from __future__ import annotations

from functools import partial

from prometheus_client import Counter, Gauge

from emeuse.kernel.sums import PartitionSums
from services.coordination import figures

ENTRIES = Counter(
    "emeuse_coordination_timeline_entries_total",
    "Entries added to persons' timelines, by axis (counted when their batch commits).",
    ["axis"],
)
REKEYED = Counter(
    "emeuse_coordination_entries_rekeyed_total",
    "Access events re-keyed by person onto the timeline-entry topic (on commit).",
)
LEFT_OUT = Counter(
    "emeuse_coordination_events_left_out_total",
    "Events read but put on no timeline, by reason: campaign_message (a campaign's message "
    "shows by its receipts), duplicate (an entry already kept), too_old (older than a full "
    "axis's oldest entry).",
    ["reason"],
)
TIMELINES_KEPT = Gauge(
    "emeuse_coordination_timelines_kept",
    "Persons' timelines on the partitions this instance holds (sum instances).",
)
ENTRIES_KEPT = Gauge(
    "emeuse_coordination_timeline_entries_kept",
    "Entries those timelines keep (at most 50 per axis each).",
)
OPEN_ITEMS = Gauge(
    "emeuse_coordination_open_items",
    "Open items kept beside those timelines, by kind: alerts, requests, incidents (not "
    "closed yet), recent (facts that count for a window).",
    ["kind"],
)
PEOPLE_AT_RISK = Gauge(
    "emeuse_coordination_people_at_risk",
    "People at risk (what ListPeopleAtRisk lists) on the partitions this instance holds, by "
    "territory.",
    ["territory"],
)

# The gauges' figures per partition held: counted from the stored state when a partition
# is opened here (processing.PROCESSOR's partition hook), then changed as batches commit.
HELD = PartitionSums()


def watch(territories: tuple[str, ...]) -> None:
    """Have the gauges read the figures of the partitions held."""
    TIMELINES_KEPT.set_function(partial(HELD.value, figures.TIMELINES))
    ENTRIES_KEPT.set_function(partial(HELD.value, figures.ENTRIES))
    for kind in figures.OPEN_KINDS:
        OPEN_ITEMS.labels(kind).set_function(partial(HELD.value, figures.open_items(kind)))
    for territory in territories:
        PEOPLE_AT_RISK.labels(territory).set_function(
            partial(HELD.value, figures.at_risk(territory))
        )
