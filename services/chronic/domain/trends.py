"""Rules over a window of a measure's history, by measurement time (not arrival).

A late reading is placed where it was measured and judged with its neighbours in time.
"""

from __future__ import annotations

from datetime import timedelta

from services.chronic.domain.monitoring import Result

WEIGHT = "29463-7"
# Heart failure: a gain of more than 2 kg over 3 days is a sign of decompensation
# (../shared/DOMAIN.md, clinical reference points).
WEIGHT_GAIN_KG = 2.0
WEIGHT_GAIN_WINDOW = timedelta(days=3)
CONSECUTIVE_OUT_OF_TARGET = 3


def weight_gain(history: list[Result], new: Result) -> tuple[float, Result] | None:
    """The largest gain over WEIGHT_GAIN_KG within the window that `new` is part of, and
    the earlier (lighter) reading of the pair; None when there is none."""
    worst: tuple[float, Result] | None = None
    for other in history:
        if other.reading_id == new.reading_id:
            continue
        apart = new.measured_at - other.measured_at
        if abs(apart) > WEIGHT_GAIN_WINDOW:
            continue
        earlier, later = (other, new) if apart >= timedelta(0) else (new, other)
        gain = later.value - earlier.value
        if gain > WEIGHT_GAIN_KG and (worst is None or gain > worst[0]):
            worst = (gain, earlier)
    return worst


def out_of_target_run(history: list[Result], new: Result, low: float, high: float) -> int:
    """Length of the run of consecutive out-of-target values `new` belongs to (0 if in target)."""

    def outside(result: Result) -> bool:
        return not low <= result.value <= high

    if not outside(new):
        return 0
    # `new` may be older than the history kept: judge it with its neighbours all the same.
    by_id = {r.reading_id: r for r in history} | {new.reading_id: new}
    ordered = sorted(by_id.values(), key=lambda r: (r.measured_at, r.reading_id))
    at = next(i for i, r in enumerate(ordered) if r.reading_id == new.reading_id)
    start, end = at, at
    while start > 0 and outside(ordered[start - 1]):
        start -= 1
    while end < len(ordered) - 1 and outside(ordered[end + 1]):
        end += 1
    return end - start + 1
