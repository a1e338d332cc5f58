"""Point-of-care INR (capillary, e.g. in an EHPAD): no alert until the medical lab
validates the result; then the prescriber is alerted first."""

from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertAction,
    AlertActionRequested,
    AlertResolution,
    AlertSeverity,
    CareRole,
    ReviewDecision,
)
from emeuse.registry import ALERT_ESCALATED, ALERT_RAISED, ALERT_RESOLVED
from emeuse.runtime.codec import InvalidEventError
from services.chronic.alerts import apply_action, due_actions
from services.chronic.domain.monitoring import OPEN, RESOLVED
from tests.unit.chronic.plans import (
    GP,
    INR,
    NOW,
    NURSE,
    PATIENT,
    anticoagulation_plan,
    in_force,
)
from tests.unit.chronic.readings import evaluate, only, reading, review, specs

PLAN = in_force(anticoagulation_plan())
# The EHPAD's care plan lists its nurse first; a lab result still goes to the GP first.
NURSE_FIRST = in_force(anticoagulation_plan(nurse_first=True))
VALIDATED = ReviewDecision.REVIEW_DECISION_VALIDATED
REJECTED = ReviewDecision.REVIEW_DECISION_REJECTED
MEASURED_AT = NOW - timedelta(hours=2)


def capillary(value, reading_id="poc-1", plan=PLAN):
    """A point-of-care INR measured two hours ago, received an hour and a half ago."""
    one = reading(INR, value, reading_id, MEASURED_AT, device_id="coaguchek-3", point_of_care=True)
    return evaluate(one, plan, now=NOW - timedelta(minutes=90))


def test_a_point_of_care_result_waits_for_the_lab_without_alerting():
    outcome = capillary(5.6)
    assert outcome.outcome == "pending_review"
    assert outcome.facts == []
    assert INR not in outcome.state.latest
    assert list(outcome.state.pending_review) == ["poc-1"]
    assert outcome.state.alerts == {}


def test_a_validated_critical_result_alerts_the_prescriber_first():
    waiting = capillary(5.6, plan=NURSE_FIRST)
    validated = review("poc-1", VALIDATED, plan=NURSE_FIRST, state=waiting.state)

    assert validated.outcome == "critical"
    assert specs(validated) == [ALERT_RAISED]
    alert = only(validated, ALERT_RAISED)
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert list(alert.reading_ids) == ["poc-1"]
    assert (alert.notified.member_id, alert.notified.role) == (GP, CareRole.CARE_ROLE_GP)
    assert alert.measurement_to_alert.ToTimedelta() == timedelta(hours=2)
    assert validated.point_of_care_to_alert == timedelta(hours=2)
    assert validated.state.latest[INR].value == 5.6
    assert validated.state.pending_review == {}


def test_after_the_prescriber_the_alert_escalates_in_plan_order():
    waiting = capillary(5.6, plan=NURSE_FIRST)
    state = review("poc-1", VALIDATED, plan=NURSE_FIRST, state=waiting.state).state
    at = NOW + timedelta(minutes=30)
    [due] = due_actions(PATIENT, NURSE_FIRST, state, at)
    escalated = only(apply_action(due, plan=NURSE_FIRST, state=state, now=at), ALERT_ESCALATED)
    assert (escalated.step, escalated.notified.member_id) == (1, NURSE)


def test_a_validated_result_in_target_is_kept_without_alert():
    waiting = capillary(2.6)
    validated = review("poc-1", VALIDATED, plan=PLAN, state=waiting.state)
    assert (validated.outcome, validated.facts) == ("in_range", [])
    assert validated.point_of_care_to_alert is None
    assert validated.state.latest[INR].value == 2.6


def test_a_rejected_result_never_alerts():
    waiting = capillary(5.6)
    rejected = review("poc-1", REJECTED, plan=PLAN, state=waiting.state)
    assert (rejected.outcome, rejected.facts) == ("rejected", [])
    assert INR not in rejected.state.latest
    assert rejected.state.pending_review == {}
    # Neither the same result sent again nor a late validation brings it back.
    resent = reading(INR, 5.6, "poc-1", MEASURED_AT, device_id="coaguchek-3", point_of_care=True)
    again = evaluate(resent, PLAN, rejected.state)
    assert (again.outcome, again.facts) == ("duplicate", [])
    late = review("poc-1", VALIDATED, plan=PLAN, state=rejected.state)
    assert (late.outcome, late.facts) == ("duplicate", [])


def test_reviewing_twice_alerts_once():
    waiting = capillary(5.6)
    once = review("poc-1", VALIDATED, plan=PLAN, state=waiting.state)
    twice = review("poc-1", VALIDATED, plan=PLAN, state=once.state)
    assert specs(once) == [ALERT_RAISED]
    assert (twice.outcome, twice.facts) == ("duplicate", [])
    assert twice.state == once.state


@pytest.mark.parametrize("reviewer", [GP, NURSE, "lab-9999"])
def test_only_the_lab_on_the_care_team_can_review(reviewer):
    waiting = capillary(5.6)
    with pytest.raises(InvalidEventError, match="not the medical lab"):
        review("poc-1", VALIDATED, plan=PLAN, state=waiting.state, reviewer=reviewer)


def test_a_review_of_a_result_nobody_sent_is_refused():
    waiting = capillary(5.6)
    with pytest.raises(InvalidEventError, match="no point-of-care result 'poc-404'"):
        review("poc-404", VALIDATED, plan=PLAN, state=waiting.state)


def test_a_review_without_a_decision_is_refused():
    waiting = capillary(5.6)
    with pytest.raises(InvalidEventError, match="validated or rejected"):
        review("poc-1", ReviewDecision.REVIEW_DECISION_UNSPECIFIED, plan=PLAN, state=waiting.state)


def test_a_validated_result_never_joins_an_open_home_episode():
    # Home INR 5.4 three hours ago: critical, to the EHPAD nurse first.
    home = evaluate(
        reading(INR, 5.4, "home-1", NOW - timedelta(hours=3)),
        NURSE_FIRST,
        now=NOW - timedelta(hours=3) + timedelta(minutes=5),
    )
    home_alert = only(home, ALERT_RAISED)
    assert home_alert.notified.member_id == NURSE
    one = reading(INR, 7.9, "poc-1", MEASURED_AT, device_id="coaguchek-3", point_of_care=True)
    waiting = evaluate(one, NURSE_FIRST, home.state, now=NOW - timedelta(minutes=90))
    assert (waiting.outcome, waiting.facts) == ("pending_review", [])

    validated = review("poc-1", VALIDATED, plan=NURSE_FIRST, state=waiting.state)

    assert validated.outcome == "critical"
    assert specs(validated) == [ALERT_RAISED]
    alert = only(validated, ALERT_RAISED)
    assert alert.alert_id != home_alert.alert_id
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert list(alert.reading_ids) == ["poc-1"]
    assert alert.notified.member_id == GP
    assert validated.point_of_care_to_alert == timedelta(hours=2)
    # The home alert keeps its own reading and stays open for the care team.
    kept = validated.state.alerts[home_alert.alert_id]
    assert (kept.status, kept.reading_ids) == (OPEN, ["home-1"])
    assert validated.state.alerts_raised == 2


# Review overdue: the lab has the plan's review_within to review a point-of-care result.

REVIEW_DUE = AlertAction.ALERT_ACTION_REVIEW_DUE
REVIEWED = AlertResolution.ALERT_RESOLUTION_REVIEWED
RECEIVED_AT = NOW - timedelta(minutes=90)


def plan_reviewed_within(hours):
    plan = anticoagulation_plan()
    plan.review_within.FromTimedelta(timedelta(hours=hours))
    return in_force(plan)


# The lab must review within 2 hours: the result received at NOW - 90 min is due at NOW + 30.
TWO_HOURS = plan_reviewed_within(2)


def after(minutes):
    return NOW + timedelta(minutes=minutes)


def review_due(state, at, plan=TWO_HOURS):
    return [a for a in due_actions(PATIENT, plan, state, at) if a.action == REVIEW_DUE]


def overdue(value=5.6):
    """A capillary INR the lab has not reviewed 2 hours after it came: its overdue alert."""
    waiting = capillary(value, plan=TWO_HOURS)
    [due] = review_due(waiting.state, after(30))
    outcome = apply_action(due, plan=TWO_HOURS, state=waiting.state, now=after(30))
    return outcome, due


def test_review_within_defaults_to_four_hours():
    assert PLAN.review_within_s == 4 * 3600
    assert TWO_HOURS.review_within_s == 2 * 3600
    waiting = capillary(5.6)
    assert review_due(waiting.state, RECEIVED_AT + timedelta(hours=4, seconds=-1), PLAN) == []
    [due] = review_due(waiting.state, RECEIVED_AT + timedelta(hours=4), PLAN)
    assert due.reading_id == "poc-1"


def test_a_review_is_due_once_review_within_has_passed_since_the_result_came():
    waiting = capillary(5.6, plan=TWO_HOURS)
    assert review_due(waiting.state, after(29)) == []
    [due] = review_due(waiting.state, after(30))
    assert (due.reading_id, due.patient_pseudonym, due.alert_id) == ("poc-1", PATIENT, "")


def test_an_overdue_review_raises_a_warning_once():
    outcome, due = overdue()

    assert outcome.outcome == "review_overdue"
    assert specs(outcome) == [ALERT_RAISED]
    alert = only(outcome, ALERT_RAISED)
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_WARNING
    assert alert.rule == "point_of_care.review_overdue"
    assert list(alert.reading_ids) == ["poc-1"]
    assert alert.loinc_code == INR
    assert alert.notified.member_id == GP
    assert outcome.state.pending_review["poc-1"].overdue_alerted
    # Applied twice: once. Not asked again, and the same step under another id does nothing.
    twice = apply_action(due, plan=TWO_HOURS, state=outcome.state, now=after(31))
    assert (twice.outcome, twice.facts) == ("duplicate", [])
    assert review_due(outcome.state, after(600)) == []
    other = AlertActionRequested(
        action_id="review-tick-2", patient_pseudonym=PATIENT, action=REVIEW_DUE, reading_id="poc-1"
    )
    again = apply_action(other, plan=TWO_HOURS, state=outcome.state, now=after(600))
    assert (again.outcome, again.facts) == ("not_due", [])


def test_a_review_step_asked_before_it_is_due_does_nothing():
    waiting = capillary(5.6, plan=TWO_HOURS)
    early = AlertActionRequested(
        action_id="review-tick", patient_pseudonym=PATIENT, action=REVIEW_DUE, reading_id="poc-1"
    )
    outcome = apply_action(early, plan=TWO_HOURS, state=waiting.state, now=after(29))
    assert (outcome.outcome, outcome.facts) == ("not_due", [])


@pytest.mark.parametrize(
    ("decision", "value", "then"),
    [
        (REJECTED, 5.6, []),
        (VALIDATED, 2.5, []),
        (VALIDATED, 5.6, [ALERT_RAISED]),
    ],
)
def test_the_lab_s_review_resolves_its_overdue_alert(decision, value, then):
    outcome, _ = overdue(value)
    overdue_id = only(outcome, ALERT_RAISED).alert_id

    reviewed = review("poc-1", decision, plan=TWO_HOURS, state=outcome.state, now=after(45))

    assert specs(reviewed) == [ALERT_RESOLVED, *then]
    resolved = only(reviewed, ALERT_RESOLVED)
    assert (resolved.alert_id, resolved.resolution, resolved.member_id) == (
        overdue_id,
        REVIEWED,
        "",
    )
    assert reviewed.state.alerts[overdue_id].status == RESOLVED
    assert reviewed.state.pending_review == {}


def test_a_validated_critical_result_after_an_overdue_review_still_alerts_on_its_own():
    outcome, _ = overdue(5.6)
    overdue_id = only(outcome, ALERT_RAISED).alert_id
    reviewed = review("poc-1", VALIDATED, plan=TWO_HOURS, state=outcome.state, now=after(45))
    raised = only(reviewed, ALERT_RAISED)
    assert raised.alert_id != overdue_id
    assert raised.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert raised.rule == "threshold.critical_high"
    assert list(raised.reading_ids) == ["poc-1"]
    assert raised.notified.member_id == GP
    assert reviewed.point_of_care_to_alert == timedelta(hours=2, minutes=45)
