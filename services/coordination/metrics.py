"""What the coordination service measures, beside the kernel's own metrics."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from prometheus_client import Counter, Gauge

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
    "Persons' timelines on the partitions this instance holds, each counted from its first "
    "change after the instance started (sum instances).",
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
    "territory, each counted from its first change after the instance started.",
    ["territory"],
)
OPEN_KINDS = ("alerts", "requests", "incidents", "recent")


class Kept:
    """What each person's stored values hold, noted as they commit.

    The kernel keeps no gauge of state, and counting over every timeline at each scrape
    would read the whole store: each person is noted when their values are stored, and the
    gauges sum the persons of the partitions this instance holds now."""

    def __init__(self) -> None:
        # person -> (partition, entries kept, open items by kind)
        self._timelines: dict[str, tuple[int, int, dict[str, int]]] = {}
        # "<territory>|<person>" -> partition, for the people at risk
        self._at_risk: dict[str, int] = {}

    def note_timeline(self, person: str, partition: int, kept: dict[str, Any]) -> None:
        entries = sum(len(axis) for axis in kept["axes"].values())
        items = kept.get("open") or {}
        self._timelines[person] = (
            partition,
            entries,
            {k: len(items.get(k, ())) for k in OPEN_KINDS},
        )

    def note_problems(self, key: str, partition: int, at_risk: bool) -> None:
        if at_risk:
            self._at_risk[key] = partition
        else:
            self._at_risk.pop(key, None)

    def _held(self, partitions: Callable[[], set[int]]) -> list[tuple[int, int, dict[str, int]]]:
        held = partitions()
        # A copy: the scrape runs on the metrics server's thread.
        return [t for t in self._timelines.copy().values() if t[0] in held]

    def timelines(self, partitions: Callable[[], set[int]]) -> float:
        return float(len(self._held(partitions)))

    def entries(self, partitions: Callable[[], set[int]]) -> float:
        return float(sum(t[1] for t in self._held(partitions)))

    def open_items(self, kind: str, partitions: Callable[[], set[int]]) -> float:
        return float(sum(t[2][kind] for t in self._held(partitions)))

    def at_risk(self, territory: str, partitions: Callable[[], set[int]]) -> float:
        held = partitions()
        return float(
            sum(
                1
                for key, partition in self._at_risk.copy().items()
                if partition in held and key.split("|", 1)[0] == territory
            )
        )

    def watch(self, partitions: Callable[[], set[int]], territories: tuple[str, ...]) -> None:
        """Have the gauges read this record of the partitions `partitions()` gives."""
        TIMELINES_KEPT.set_function(lambda: self.timelines(partitions))
        ENTRIES_KEPT.set_function(lambda: self.entries(partitions))
        for kind in OPEN_KINDS:
            OPEN_ITEMS.labels(kind).set_function(partial(self.open_items, kind, partitions))
        for territory in territories:
            PEOPLE_AT_RISK.labels(territory).set_function(
                partial(self.at_risk, territory, partitions)
            )


KEPT = Kept()
