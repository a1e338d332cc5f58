"""Home-aide check-outs: aides leaving the visits they came to."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emeuse.simulate.calls import VISIT_LENGTH_S
from emeuse.simulate.events import Options
from emeuse.simulate.run import plan

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def visits(options: Options) -> tuple[dict[str, object], dict[str, object], int]:
    run_plan = plan(options, now=START)
    live = list(run_plan.live)
    ins = {e.message["visit_id"]: e for e in live if e.target == "home/CheckIn"}
    outs = {e.message["visit_id"]: e for e in live if e.target == "home/CheckOut"}
    planned = sum(1 for e in run_plan.stages[-1] if e.target == "home/PlanVisit")
    return ins, outs, planned


def test_aides_check_out_of_every_visit_they_checked_in_to_after_about_its_planned_length():
    # Three hours: long enough for whole visits, which start in the run's first half.
    options = Options(seed=31, scale=0.05, rate=1, duration=3 * 3600, missed_visit_rate=0.2)
    ins, outs, planned = visits(options)
    assert len(ins) / planned == pytest.approx(0.8, abs=0.1)
    assert set(outs) == set(ins)
    for visit, out in outs.items():
        stay = out.due - ins[visit].due  # type: ignore[attr-defined]
        assert 0.8 * VISIT_LENGTH_S <= stay <= 1.1 * VISIT_LENGTH_S
        left = datetime.fromisoformat(out.message["checked_out_at"].replace("Z", "+00:00"))  # type: ignore[attr-defined]
        assert left == out.at  # type: ignore[attr-defined]


def test_in_a_run_shorter_than_a_visit_the_aides_still_leave_before_it_ends():
    options = Options(seed=32, scale=0.05, rate=50, duration=60, missed_visit_rate=0.1)
    ins, outs, _ = visits(options)
    assert ins and set(outs) == set(ins)
    for visit, out in outs.items():
        assert ins[visit].due < out.due < options.duration  # type: ignore[attr-defined]
