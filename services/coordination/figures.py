"""What the coordination gauges count in one stored value, and in a whole partition.

A timeline counts once, with its entries and its open items by kind; a problems value
(keyed "<territory>|<person>") counts its person at risk in that territory. The gauges are
these figures summed over the partitions an instance holds (emeuse.kernel.sums).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

from emeuse.kernel.declare import Scan
from emeuse.kernel.sums import Figures, total
from services.coordination.domain import problems

TIMELINES, ENTRIES = "timelines", "entries"
OPEN_KINDS = ("alerts", "requests", "incidents", "recent")


def open_items(kind: str) -> str:
    return f"open:{kind}"


def at_risk(territory: str) -> str:
    return f"at_risk:{territory}"


def of_timeline(kept: dict[str, Any] | None) -> Figures:
    if kept is None:
        return {}
    items = kept.get("open") or {}
    figures = {TIMELINES: 1, ENTRIES: sum(len(axis) for axis in kept["axes"].values())}
    for kind in OPEN_KINDS:
        figures[open_items(kind)] = len(items.get(kind, ()))
    return figures


def of_problems(key: str, found: Iterable[problems.Problem] | None) -> Figures:
    """A person at risk in the territory of `key` ("<territory>|<person>")."""
    if found is None or not problems.at_risk(list(found)):
        return {}
    return {at_risk(key.split("|", 1)[0]): 1}


def of_stored_problems(key: str, stored: list[dict[str, Any]] | None) -> Figures:
    return of_problems(key, None if stored is None else [problems.from_dict(p) for p in stored])


def of_partition(scan: Scan, timelines: str, with_problems: str) -> Figures:
    """Every timeline and problems value a partition holds, counted."""
    return total(
        chain(
            (of_timeline(kept) for _, kept in scan(timelines)),
            (of_stored_problems(key, stored) for key, stored in scan(with_problems)),
        )
    )
