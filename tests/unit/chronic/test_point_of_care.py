"""Point-of-care INR (capillary, e.g. in an EHPAD): no alert until the medical lab
validates the result; then the prescriber is alerted first."""

from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertSeverity, CareRole, ReviewDecision
from emeuse.registry import ALERT_ESCALATED, ALERT_RAISED
from emeuse.runtime.codec import InvalidEventError
from services.chronic.alerts import apply_action, due_actions
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
