"""A handler changes a copy of the stored state; the stored one (shared by readers and kept
for an aborted transaction) never moves."""

from __future__ import annotations

from datetime import UTC, datetime

from services.chronic.domain.monitoring import (
    OPEN,
    RESOLVED,
    AlertState,
    PatientState,
    PendingResult,
    Result,
)
from services.chronic.domain.plan import Member

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def stored_state() -> PatientState:
    state = PatientState()
    state.record("34714-6", Result(reading_id="r1", value=2.5, unit="{INR}", measured_at=NOW))
    state.pending_review["r2"] = PendingResult(
        reading_id="r2",
        value=6.0,
        unit="{INR}",
        measured_at=NOW,
        loinc_code="34714-6",
        received_at=NOW,
    )
    alert = AlertState(
        alert_id="a1",
        episode="values",
        loinc_code="34714-6",
        severity="critical",
        rule="threshold.critical_high",
        reason="INR 6",
        territory="55",
        raised_at=NOW,
        reading_ids=["r2"],
        chain=[Member(member_id="gp-1", role=1, rank=1)],
        acknowledge_within_s=1800,
    )
    state.add_alert(alert)
    state.remember("e1")
    return state


def test_changing_the_copy_leaves_the_stored_state_as_it_was() -> None:
    stored = stored_state()
    before = stored.model_dump()
    copy = stored.changed()
    copy.alerts["a1"].status = RESOLVED
    copy.alerts["a1"].reading_ids.append("r3")
    copy.pending_review["r2"].overdue_alerted = True
    copy.record("34714-6", Result(reading_id="r3", value=2.8, unit="{INR}", measured_at=NOW))
    copy.gap_closed_at["34714-6"] = NOW
    copy.remember("e2")
    assert stored.model_dump() == before
    assert stored.alerts["a1"].status == OPEN
    assert copy.alerts["a1"].reading_ids == ["r2", "r3"]
