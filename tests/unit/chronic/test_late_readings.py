"""Measurement time on every path: the issue's case, a 10 s interval, a reading measured
at +5 s and delivered at +11 s. Device readings (Kafka, RecordReading, FHIR final),
point-of-care results waiting for the lab, and corrections all restart the gap clock from
when they were measured, also when they close an open gap, and a late or out-of-order
reading never moves it back."""

from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertAction
from emeuse.registry import ALERT_RAISED, ALERT_RESOLVED
from services.chronic.alerts import apply_action, due_actions, gap_due_at
from services.chronic.domain.monitoring import GAP, PatientState
from tests.unit.chronic.plans import INR, NOW, PATIENT, anticoagulation_plan, in_force
from tests.unit.chronic.readings import correct, correction, evaluate, only, reading, specs

EVERY = timedelta(seconds=10)


def ten_second_plan():
    plan = anticoagulation_plan()
    plan.thresholds[0].expected_every.FromTimedelta(EVERY)
    return in_force(plan, recorded_at=NOW)


PLAN = ten_second_plan()


def at(seconds):
    return NOW + timedelta(seconds=seconds)


def device(reading_id, measured, received, state):
    return evaluate(reading(INR, 2.5, reading_id, measured), PLAN, state, received)


def point_of_care(reading_id, measured, received, state):
    capillary = reading(INR, 2.5, reading_id, measured, point_of_care=True)
    return evaluate(capillary, PLAN, state, received)


def corrected(reading_id, measured, received, state):
    return correct(correction(INR, 2.5, reading_id, measured), PLAN, state, received)


PATHS = pytest.mark.parametrize("send", [device, point_of_care, corrected])


def gap_open_at(seconds):
    """The gap alert the timer raised when no reading came within the first interval."""
    [due] = due_actions(PATIENT, PLAN, PatientState(), at(seconds))
    outcome = apply_action(due, plan=PLAN, state=PatientState(), now=at(seconds))
    return outcome.state, only(outcome, ALERT_RAISED)


@PATHS
def test_a_late_reading_that_closes_a_gap_restarts_the_clock_from_its_measurement(send):
    state, gap = gap_open_at(10.5)
    late = send("inr-1", at(5), at(11), state)
    assert specs(late) == [ALERT_RESOLVED]
    assert only(late, ALERT_RESOLVED).alert_id == gap.alert_id
    assert gap_due_at(PLAN, late.state, INR) == at(15)
    [next_gap] = due_actions(PATIENT, PLAN, late.state, at(15))
    assert next_gap.action == AlertAction.ALERT_ACTION_GAP_DUE
    again = apply_action(next_gap, plan=PLAN, state=late.state, now=at(15.5))
    raised = only(again, ALERT_RAISED)
    assert raised.alert_id != gap.alert_id
    assert raised.measured_at.ToDatetime().replace(tzinfo=NOW.tzinfo) == at(15)


@PATHS
def test_a_late_reading_with_no_gap_open_counts_from_its_measurement(send):
    late = send("inr-1", at(5), at(11), PatientState())
    assert gap_due_at(PLAN, late.state, INR) == at(15)


@PATHS
def test_a_reading_measured_before_the_gap_began_leaves_it_open(send):
    state, gap = gap_open_at(10.5)
    older = send("inr-0", at(-3), at(11), state)
    assert ALERT_RESOLVED not in specs(older)
    assert older.state.open_alert(INR, GAP).alert_id == gap.alert_id
    # Still open, so the timer does not ask for the same gap again.
    assert due_actions(PATIENT, PLAN, older.state, at(12)) == []


@PATHS
def test_out_of_order_readings_keep_the_clock_at_the_newest_measurement(send):
    state, _ = gap_open_at(10.5)
    newer = send("inr-2", at(8), at(11), state)
    older = send("inr-1", at(5), at(12), newer.state)
    assert gap_due_at(PLAN, older.state, INR) == at(18)
    assert due_actions(PATIENT, PLAN, older.state, at(17)) == []


def test_a_very_late_reading_closes_the_gap_and_the_next_one_is_due_at_once():
    state, gap = gap_open_at(10.5)
    late = device("inr-1", at(1), at(30), state)
    assert specs(late) == [ALERT_RESOLVED]
    [next_gap] = due_actions(PATIENT, PLAN, late.state, at(30))
    again = apply_action(next_gap, plan=PLAN, state=late.state, now=at(30))
    raised = only(again, ALERT_RAISED)
    assert raised.alert_id != gap.alert_id
    assert raised.reason.startswith(f"{INR} no reading since {at(1).isoformat()}")
