"""A month's or a week's figures for one experiment and territory: counts and duration
histograms.

A cell is a JSON document `{"counts": {"name" or "name|dim=value": n}, "durations":
{name: {bucket: n}}}`. Each partition keeps its own cells; an answer merges them, and only
then turns them into indicators and suppresses small cells.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.evaluation.domain import histogram, secrecy

Cell = dict[str, Any]
# Small-cell rule: a figure resting on 1 to 9 events or persons is withheld.
SMALL_CELL = 10
COUNT_UNITS = frozenset({"count", "persons"})
QUANTILES = (("median", 0.5), ("p90", 0.9))
# Magnitudes kept as whole counts of a fraction of their unit (name -> unit, parts per
# unit): a sum, not a count of events, so it is shown or withheld with the count of its
# contributors, `<indicator>.observations`, as a quantile is.
MAGNITUDES = {"access.distance_avoided.km": ("km", 10)}


def empty() -> Cell:
    return {"counts": {}, "durations": {}}


def count_key(name: str, breakdown: str = "") -> str:
    return f"{name}|{breakdown}" if breakdown else name


def add_count(cell: Cell, name: str, breakdowns: Iterable[str] = (), amount: int = 1) -> None:
    """One more (or `amount`) in the total and in each breakdown (dimension=value)."""
    counts = cell.setdefault("counts", {})
    for key in (name, *(count_key(name, b) for b in breakdowns)):
        counts[key] = counts.get(key, 0) + amount


def add_breakdowns(cell: Cell, name: str, breakdowns: Iterable[str]) -> None:
    """One more in each breakdown of a total already counted (unmet.py: a flag read
    before its request)."""
    counts = cell.setdefault("counts", {})
    for key in (count_key(name, b) for b in breakdowns):
        counts[key] = counts.get(key, 0) + 1


def remove_count(cell: Cell, name: str, breakdowns: Iterable[str] = ()) -> None:
    """One less in the total and each breakdown (a flag moved to its request's experiment,
    processing.late_flag); a count back to zero is no figure, as if never counted."""
    counts = cell.setdefault("counts", {})
    for key in (name, *(count_key(name, b) for b in breakdowns)):
        left = counts.get(key, 0) - 1
        if left > 0:
            counts[key] = left
        else:
            counts.pop(key, None)


def is_empty(cell: Cell) -> bool:
    return not cell.get("counts") and not cell.get("durations")


def add_duration(cell: Cell, name: str, seconds: float) -> None:
    buckets = cell.setdefault("durations", {}).setdefault(name, {})
    bucket = str(histogram.bucket_of(seconds))
    buckets[bucket] = buckets.get(bucket, 0) + 1


def merge(cells: Iterable[Cell]) -> Cell:
    total = empty()
    for cell in cells:
        for key, n in cell.get("counts", {}).items():
            total["counts"][key] = total["counts"].get(key, 0) + n
        for name, buckets in cell.get("durations", {}).items():
            into = total["durations"].setdefault(name, {})
            for bucket, n in buckets.items():
                into[str(bucket)] = into.get(str(bucket), 0) + n
    return total


@dataclass(frozen=True)
class Figure:
    """One indicator of one period (month or ISO week), before or after suppression."""

    period: str
    name: str
    breakdown: str
    unit: str
    value: float
    suppressed: bool = False


def figures(period: str, cell: Cell, person_counts: frozenset[str]) -> list[Figure]:
    """The cell's indicators, unsuppressed, in order of name and breakdown."""
    out: list[Figure] = []
    for key, n in cell.get("counts", {}).items():
        name, _, breakdown = key.partition("|")
        if name in MAGNITUDES:
            unit, parts = MAGNITUDES[name]
            out.append(Figure(period, name, breakdown, unit, n / parts))
            continue
        unit = "persons" if name in person_counts else "count"
        out.append(Figure(period, name, breakdown, unit, float(n)))
    for name, raw in cell.get("durations", {}).items():
        buckets = {int(bucket): n for bucket, n in raw.items()}
        out.append(Figure(period, f"{name}.observations", "", "count", histogram.size(buckets)))
        for label, q in QUANTILES:
            value = histogram.quantile(buckets, q)
            if value is not None:
                out.append(Figure(period, f"{name}.{label}", "", "seconds", round(value, 1)))
    return sorted(out, key=lambda f: (f.name, f.breakdown))


def suppressed(
    figures_: Iterable[Figure], declared: Iterable[secrecy.Relation] = ()
) -> list[Figure]:
    """Counts from 1 to 9 withheld, and those that would give one away by subtraction
    (secrecy.py; `declared`: relations between indicators), period by period; quantiles of
    fewer than 10 durations withheld, and magnitudes of fewer than 10 contributors."""
    rows = list(figures_)
    relations = list(declared)
    observed = {(f.period, f.name): f.value for f in rows if f.name.endswith(".observations")}
    counts: dict[str, dict[secrecy.Key, float]] = {}  # by period
    for f in rows:
        if f.unit in COUNT_UNITS:
            counts.setdefault(f.period, {})[(f.name, f.breakdown)] = f.value
    hidden = {
        (period, *key)
        for period, table in counts.items()
        for key in secrecy.withheld(table, relations, SMALL_CELL)
    }
    out = []
    for f in rows:
        if f.unit not in COUNT_UNITS:
            base = f.name.rsplit(".", 1)[0] + ".observations"
            withhold = observed.get((f.period, base), 0) < SMALL_CELL
        else:
            withhold = (f.period, f.name, f.breakdown) in hidden
        out.append(Figure(f.period, f.name, f.breakdown, f.unit, 0.0, True) if withhold else f)
    return out
