"""What the coordination service measures, beside the kernel's own metrics."""

from prometheus_client import Counter

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
