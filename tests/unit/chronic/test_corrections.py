"""Corrected results: a lab's corrected value replaces the one it sent under the same id,
is judged again, and raises, updates or resolves an alert that says it was corrected."""

from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertResolution,
    AlertSeverity,
    ReviewDecision,
)
from emeuse.registry import ALERT_RAISED, ALERT_RESOLVED, ALERT_UPDATED
from emeuse.runtime.codec import InvalidEventError
from services.chronic.care_plan import record_care_plan
from services.chronic.domain.monitoring import PatientState, Result
from services.chronic.grpc_api import patient_status
from tests.unit.chronic.plans import (
    GLUCOSE,
    INR,
    NOW,
    PATIENT,
    TERRITORY,
    anticoagulation_plan,
    diabetes_plan,
    in_force,
)
from tests.unit.chronic.readings import (
    correct,
    correction,
    evaluate,
    feed,
    only,
    reading,
    review,
    specs,
)

PLAN = in_force(diabetes_plan())
MEASURED = NOW - timedelta(hours=2)


def glucose(value, reading_id="glu-1", at=MEASURED):
    return reading(GLUCOSE, value, reading_id, at)


def corrected(value, reading_id="glu-1", at=MEASURED):
    return correction(GLUCOSE, value, reading_id, at)


def test_a_result_corrected_from_120_to_450_raises_a_critical_alert_saying_so():
    state = evaluate(glucose(120), PLAN).state
    outcome = correct(corrected(450), PLAN, state)
    assert outcome.outcome == "critical"
    alert = only(outcome, ALERT_RAISED)
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert list(alert.reading_ids) == ["glu-1"]
    assert alert.HasField("correction")
    assert (alert.correction.reading_id, alert.correction.unit) == ("glu-1", "mg/dL")
    assert (alert.correction.previous_value, alert.correction.corrected_value) == (120, 450)
    # The corrected value replaced the earlier one: the care team sees 450, once.
    assert [(r.reading_id, r.value) for r in alert.recent_results] == [("glu-1", 450)]
    assert outcome.state.latest[GLUCOSE].value == 450
    assert [r.value for r in outcome.state.history[GLUCOSE]] == [450]


def test_the_care_team_sees_both_values_in_the_patient_status():
    state = evaluate(glucose(120), PLAN).state
    state = correct(corrected(450), PLAN, state).state
    stored = record_care_plan(
        diabetes_plan(), previous=None, territory=TERRITORY, recorded_at=NOW - timedelta(days=1)
    )
    status = patient_status(PATIENT, stored, state, NOW)
    assert [v.value for v in status.latest_values] == [450]
    [alert] = status.open_alerts
    assert (alert.correction.previous_value, alert.correction.corrected_value) == (120, 450)


def test_the_same_id_sent_again_as_final_stays_a_duplicate():
    state = evaluate(glucose(120), PLAN).state
    again = evaluate(glucose(450), PLAN, state)
    assert (again.outcome, again.facts) == ("duplicate", [])
    assert again.state.latest[GLUCOSE].value == 120


def test_the_original_arriving_after_its_correction_changes_nothing():
    state = correct(corrected(450), PLAN).state
    late_original = evaluate(glucose(120), PLAN, state)
    assert (late_original.outcome, late_original.facts) == ("duplicate", [])
    assert state.latest[GLUCOSE].value == 450


def test_the_same_correction_sent_twice_counts_once():
    state = evaluate(glucose(120), PLAN).state
    once = correct(corrected(450), PLAN, state)
    twice = correct(corrected(450), PLAN, once.state)
    assert specs(once) == [ALERT_RAISED]
    assert (twice.outcome, twice.facts) == ("duplicate", [])


def test_a_correction_of_a_reading_never_received_is_judged_as_new_and_marked():
    outcome = correct(corrected(450), PLAN)
    alert = only(outcome, ALERT_RAISED)
    assert alert.correction.corrected_value == 450
    assert not alert.correction.HasField("previous_value")
    assert outcome.state.latest[GLUCOSE].value == 450


def test_a_correction_back_in_range_resolves_the_alert_it_alone_raised():
    state = evaluate(glucose(450), PLAN).state
    raised = state.last_alert_id
    outcome = correct(corrected(120), PLAN, state)
    assert specs(outcome) == [ALERT_RESOLVED]
    resolved = only(outcome, ALERT_RESOLVED)
    assert resolved.alert_id == raised
    assert resolved.resolution == AlertResolution.ALERT_RESOLUTION_CORRECTED
    assert (resolved.correction.previous_value, resolved.correction.corrected_value) == (450, 120)
    assert outcome.state.alerts[raised].correction.previous_value == 450
    assert outcome.state.latest[GLUCOSE].value == 120


def test_a_correction_back_in_range_within_a_longer_episode_updates_the_alert():
    state, _ = feed(
        [glucose(300, "glu-1"), glucose(320, "glu-2", MEASURED + timedelta(hours=1))], PLAN
    )
    raised = state.last_alert_id
    outcome = correct(corrected(120, "glu-1"), PLAN, state)
    update = only(outcome, ALERT_UPDATED)
    assert (update.alert_id, update.rule, update.reading_id) == (
        raised,
        "correction.in_range",
        "glu-1",
    )
    assert (update.correction.previous_value, update.correction.corrected_value) == (300, 120)
    assert outcome.state.alerts[raised].is_open
    assert outcome.state.alerts[raised].reading_ids == ["glu-1", "glu-2"]


def test_a_correction_still_out_of_range_updates_its_alert():
    state = evaluate(glucose(300), PLAN).state
    raised = state.last_alert_id
    outcome = correct(corrected(320), PLAN, state)
    update = only(outcome, ALERT_UPDATED)
    assert (update.alert_id, update.rule) == (raised, "threshold.high")
    assert update.correction.corrected_value == 320
    assert update.episode_readings == 1


def test_a_warning_corrected_to_critical_supersedes_the_warning():
    state = evaluate(glucose(300), PLAN).state
    warning = state.last_alert_id
    outcome = correct(corrected(450), PLAN, state)
    assert specs(outcome) == [ALERT_RESOLVED, ALERT_RAISED]
    assert only(outcome, ALERT_RESOLVED).alert_id == warning
    critical = only(outcome, ALERT_RAISED)
    assert critical.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert critical.correction.previous_value == 300


def test_a_correction_cannot_change_the_measure():
    state = evaluate(glucose(120), PLAN).state
    with pytest.raises(InvalidEventError, match="changes its measure"):
        correct(correction(INR, 2.5, "glu-1", MEASURED), PLAN, state)


def test_an_impossible_corrected_value_is_refused():
    state = evaluate(glucose(120), PLAN).state
    with pytest.raises(InvalidEventError, match="impossible"):
        correct(corrected(4000), PLAN, state)


def test_a_point_of_care_result_corrected_before_review_is_reviewed_at_its_corrected_value():
    plan = in_force(anticoagulation_plan())
    capillary = reading(INR, 2.5, "inr-1", MEASURED, point_of_care=True)
    state = evaluate(capillary, plan).state
    fixed = correct(correction(INR, 5.6, "inr-1", MEASURED), plan, state)
    assert (fixed.outcome, fixed.facts) == ("pending_review", [])
    assert fixed.state.pending_review["inr-1"].value == 5.6
    validated = review(
        "inr-1", ReviewDecision.REVIEW_DECISION_VALIDATED, plan=plan, state=fixed.state
    )
    assert only(validated, ALERT_RAISED).severity == AlertSeverity.ALERT_SEVERITY_CRITICAL


# The state's part: a corrected result replaces the earlier one, by id.


def test_forgetting_the_latest_result_falls_back_to_the_newest_left():
    state = PatientState()
    older = Result(reading_id="a", value=100, unit="mg/dL", measured_at=MEASURED)
    newer = Result(reading_id="b", value=200, unit="mg/dL", measured_at=NOW)
    state.record(GLUCOSE, older)
    state.record(GLUCOSE, newer)
    assert state.result_of("b") == (GLUCOSE, newer)
    state.forget(GLUCOSE, "b")
    assert state.result_of("b") is None
    assert state.latest[GLUCOSE] == older
    state.forget(GLUCOSE, "a")
    assert GLUCOSE not in state.latest
