"""A person's timeline: small entries per axis, bounded, read in time order.

An entry is a dict of short fields: `id` (the axis event's id), `axis`, `kind`, `at`
(milliseconds since the epoch, UTC), `subject`, `related`, `code`, `detail`, `territory`.
Each axis keeps its last MAX_PER_AXIS entries by time, so a chatty axis (a prevention
campaign's receipts) never pushes another axis's alerts out of the person's timeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_PER_AXIS = 50
AXES = ("chronic", "access", "home", "prevention")

Entry = dict[str, Any]
Timeline = dict[str, Any]


def empty() -> Timeline:
    return {"territory": "", "axes": {}}


def order(entry: Entry) -> tuple[int, str]:
    """An entry's place in time order: when it happened, then its id (ties stay stable)."""
    return int(entry["at"]), str(entry["id"])


def add(timeline: Timeline, entry: Entry) -> bool:
    """Add an entry in time order, dropping the axis's oldest past the bound. False when
    the entry is already there (an event read twice is one fact) or is older than every
    kept entry of a full axis (it would be dropped at once)."""
    kept: list[Entry] = timeline["axes"].setdefault(entry["axis"], [])
    if any(e["id"] == entry["id"] for e in kept):
        return False
    if len(kept) >= MAX_PER_AXIS and order(entry) < order(kept[0]):
        return False
    kept.append(entry)
    kept.sort(key=order)
    del kept[:-MAX_PER_AXIS]
    if entry.get("territory"):
        timeline["territory"] = entry["territory"]
    return True


def entries(timeline: Timeline) -> list[Entry]:
    """Every kept entry of every axis, in time order."""
    found: list[Entry] = [e for kept in timeline["axes"].values() for e in kept]
    return sorted(found, key=order)


def page(
    ordered: Iterable[Entry], after: tuple[int, str] | None, size: int
) -> tuple[list[Entry], tuple[int, str] | None]:
    """The `size` entries after the cursor `after` (None: from the start) and the cursor of
    the next page (None on the last page). A cursor is the last entry's place in time
    order, so entries added or dropped between two pages never repeat or skip one."""
    rest = [e for e in ordered if after is None or order(e) > after]
    shown = rest[:size]
    more = len(rest) > size
    return shown, (order(shown[-1]) if more and shown else None)
