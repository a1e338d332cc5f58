"""Monitoring gaps: a measure expected once a day that stops coming alerts the care team,
and its next reading (validated or waiting for the lab) closes the gap."""

from datetime import timedelta

from emeuse.chronic.v1.chronic_events_pb2 import AlertAction, AlertResolution, AlertSeverity
from emeuse.registry import ALERT_RAISED, ALERT_RESOLVED
from services.chronic.alerts import apply_action, due_actions, gap_due_at
from services.chronic.care_plan import plan_in_force, record_care_plan
from services.chronic.domain.monitoring import PatientState
from tests.unit.chronic.plans import (
    GLUCOSE,
    GP,
    INR,
    NOW,
    NURSE,
    PATIENT,
    PLAN_RECORDED_AT,
    TERRITORY,
    WEIGHT,
    anticoagulation_plan,
    diabetes_plan,
    in_force,
)
from tests.unit.chronic.readings import action, evaluate, only, reading, specs

# Recorded a day before NOW, INR expected daily: with no reading, due at NOW.
PLAN = in_force(anticoagulation_plan())
GAP_DUE = AlertAction.ALERT_ACTION_GAP_DUE
DATA_RECEIVED = AlertResolution.ALERT_RESOLUTION_DATA_RECEIVED


def after(minutes):
    return NOW + timedelta(minutes=minutes)


def a_gap():
    """The gap alert the timer raises a minute after NOW: the new state and the AlertRaised."""
    at = after(1)
    [due] = due_actions(PATIENT, PLAN, PatientState(), at)
    outcome = apply_action(due, plan=PLAN, state=PatientState(), now=at)
    return outcome.state, only(outcome, ALERT_RAISED)


def test_no_gap_is_due_within_the_expected_interval():
    assert due_actions(PATIENT, PLAN, PatientState(), after(-1)) == []


def test_a_gap_is_due_once_the_interval_since_the_plan_ran_out_without_a_reading():
    [due] = due_actions(PATIENT, PLAN, PatientState(), after(1))
    assert due.action == GAP_DUE
    assert (due.loinc_code, due.patient_pseudonym, due.alert_id) == (INR, PATIENT, "")


def test_the_gap_raises_a_monitoring_gap_alert():
    state, alert = a_gap()
    assert alert.rule == "monitoring.gap"
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_WARNING
    assert alert.loinc_code == INR
    assert alert.notified.member_id == GP
    assert list(alert.reading_ids) == []
    assert alert.reason.startswith(f"{INR} no reading since {PLAN_RECORDED_AT.isoformat()}")
    # The reading was expected at NOW at the latest.
    assert alert.measured_at.ToDatetime().replace(tzinfo=NOW.tzinfo) == NOW
    assert alert.measurement_to_alert.ToTimedelta() == timedelta(minutes=1)
    assert state.alerts_raised == 1


def test_the_same_gap_applied_twice_alerts_once():
    [due] = due_actions(PATIENT, PLAN, PatientState(), after(1))
    once = apply_action(due, plan=PLAN, state=PatientState(), now=after(1))
    twice = apply_action(due, plan=PLAN, state=once.state, now=after(2))
    assert specs(once) == [ALERT_RAISED]
    assert (twice.outcome, twice.facts) == ("duplicate", [])


def test_an_open_gap_is_not_asked_again():
    state, _ = a_gap()
    asked = due_actions(PATIENT, PLAN, state, after(2))
    assert [a.action for a in asked if a.action == GAP_DUE] == []


def test_a_reading_in_target_ends_the_gap_with_data_received():
    state, gap = a_gap()
    outcome = evaluate(reading(INR, 2.5, "inr-1", after(5)), PLAN, state, now=after(6))
    assert outcome.outcome == "in_range"
    assert specs(outcome) == [ALERT_RESOLVED]
    resolved = only(outcome, ALERT_RESOLVED)
    assert (resolved.alert_id, resolved.resolution, resolved.member_id) == (
        gap.alert_id,
        DATA_RECEIVED,
        "",
    )
    assert outcome.state.open_alert(INR, "gap") is None


def test_an_abnormal_reading_ends_the_gap_and_raises_its_own_alert():
    state, gap = a_gap()
    outcome = evaluate(reading(INR, 5.6, "inr-1", after(5)), PLAN, state, now=after(6))
    assert specs(outcome) == [ALERT_RESOLVED, ALERT_RAISED]
    assert only(outcome, ALERT_RESOLVED).alert_id == gap.alert_id
    assert only(outcome, ALERT_RAISED).rule == "threshold.critical_high"


def test_a_point_of_care_reading_waiting_for_the_lab_also_ends_the_gap():
    state, gap = a_gap()
    capillary = reading(INR, 2.4, "inr-1", after(5), point_of_care=True)
    outcome = evaluate(capillary, PLAN, state, now=after(6))
    assert outcome.outcome == "pending_review"
    assert specs(outcome) == [ALERT_RESOLVED]
    resolved = only(outcome, ALERT_RESOLVED)
    assert (resolved.alert_id, resolved.resolution) == (gap.alert_id, DATA_RECEIVED)
    assert due_actions(PATIENT, PLAN, outcome.state, after(60)) == []


def test_a_recent_reading_keeps_the_gap_away_for_one_interval():
    fed = evaluate(reading(INR, 2.5, "inr-1", NOW - timedelta(hours=2)), PLAN)
    assert gap_due_at(PLAN, fed.state, INR) == NOW + timedelta(hours=22)
    assert due_actions(PATIENT, PLAN, fed.state, NOW + timedelta(hours=21)) == []
    [due] = due_actions(PATIENT, PLAN, fed.state, NOW + timedelta(hours=22))
    assert due.action == GAP_DUE


def test_a_gap_asked_just_before_a_reading_arrived_does_nothing():
    [asked] = due_actions(PATIENT, PLAN, PatientState(), after(1))
    fed = evaluate(reading(INR, 2.5, "inr-1", after(1)), PLAN, now=after(2))
    outcome = apply_action(asked, plan=PLAN, state=fed.state, now=after(3))
    assert (outcome.outcome, outcome.facts) == ("not_due", [])


def test_after_a_gap_closes_the_next_one_counts_from_the_measurement():
    state, _ = a_gap()
    # The missing reading, measured before the gap opened, arrives an hour late.
    late = evaluate(reading(INR, 2.5, "inr-1", NOW - timedelta(hours=3)), PLAN, state, after(60))
    assert specs(late) == [ALERT_RESOLVED]
    assert gap_due_at(PLAN, late.state, INR) == NOW - timedelta(hours=3) + timedelta(days=1)
    assert due_actions(PATIENT, PLAN, late.state, after(61)) == []


def test_the_care_team_closing_a_gap_restarts_its_clock():
    state, gap = a_gap()
    handled = apply_action(
        action(
            AlertAction.ALERT_ACTION_RESOLVE,
            gap.alert_id,
            action_id="a-1",
            member_id=NURSE,
            resolution=AlertResolution.ALERT_RESOLUTION_HANDLED,
        ),
        plan=PLAN,
        state=state,
        now=after(30),
    )
    assert specs(handled) == [ALERT_RESOLVED]
    assert due_actions(PATIENT, PLAN, handled.state, after(31)) == []
    [next_gap] = due_actions(PATIENT, PLAN, handled.state, after(30) + timedelta(days=1))
    assert next_gap.action == GAP_DUE
    again = apply_action(
        next_gap, plan=PLAN, state=handled.state, now=after(30) + timedelta(days=1)
    )
    assert only(again, ALERT_RAISED).alert_id != gap.alert_id


def test_a_patient_without_a_care_plan_has_no_gap():
    assert due_actions(PATIENT, None, PatientState(), NOW + timedelta(days=30)) == []


# Plan changes: the gap clock of a measure whose interval did not change keeps running.

CHANGED_AT = NOW - timedelta(hours=6)


def changed(plan, previous, at=CHANGED_AT):
    return record_care_plan(plan, previous=previous, territory=TERRITORY, recorded_at=at)


def enrolled(plan):
    return changed(plan, None, at=PLAN_RECORDED_AT)


def test_a_plan_change_that_keeps_the_interval_keeps_the_gap_clock():
    first = enrolled(anticoagulation_plan())
    tighter = anticoagulation_plan()
    tighter.care_plan_id = "cp-inr-2"
    tighter.thresholds[0].critical_high = 4.5
    second = changed(tighter, first)
    third = changed(tighter, second, at=CHANGED_AT + timedelta(hours=1))
    for stored in (second, third):
        plan = plan_in_force(stored)
        assert plan.bands[INR].monitored_since == PLAN_RECORDED_AT
        assert plan.recorded_at > PLAN_RECORDED_AT
        # Still due a day after enrolment, not a day after the change.
        assert gap_due_at(plan, PatientState(), INR) == NOW
        assert [a.action for a in due_actions(PATIENT, plan, PatientState(), NOW)] == [GAP_DUE]


def test_a_changed_interval_restarts_the_gap_clock_at_the_change():
    first = enrolled(anticoagulation_plan())
    twice_a_day = anticoagulation_plan()
    twice_a_day.care_plan_id = "cp-inr-2"
    twice_a_day.thresholds[0].expected_every.FromTimedelta(timedelta(hours=12))
    plan = plan_in_force(changed(twice_a_day, first))
    assert plan.bands[INR].monitored_since == CHANGED_AT
    assert gap_due_at(plan, PatientState(), INR) == CHANGED_AT + timedelta(hours=12)
    assert due_actions(PATIENT, plan, PatientState(), NOW) == []


def test_a_measure_added_by_a_change_is_monitored_from_the_change():
    first = enrolled(diabetes_plan())
    with_weight = diabetes_plan(weight=True)
    with_weight.care_plan_id = "cp-diabetes-2"
    plan = plan_in_force(changed(with_weight, first))
    assert plan.bands[GLUCOSE].monitored_since == PLAN_RECORDED_AT
    assert plan.bands[WEIGHT].monitored_since == CHANGED_AT
    assert gap_due_at(plan, PatientState(), GLUCOSE) == NOW
    assert gap_due_at(plan, PatientState(), WEIGHT) == CHANGED_AT + timedelta(days=1)
    assert [a.loinc_code for a in due_actions(PATIENT, plan, PatientState(), NOW)] == [GLUCOSE]
