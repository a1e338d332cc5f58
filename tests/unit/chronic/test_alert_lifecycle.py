"""One alert per episode, and what the care team does with it: acknowledge, resolve."""

from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertAction, AlertResolution, AlertSeverity
from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_RESOLVED,
    ALERT_UPDATED,
)
from emeuse.runtime.codec import InvalidEventError
from services.chronic.alerts import apply_action, due_actions
from services.chronic.domain.monitoring import ACKNOWLEDGED, OPEN, RESOLVED, PatientState
from tests.unit.chronic.plans import (
    GP,
    INR,
    LAB,
    NOW,
    NURSE,
    PATIENT,
    anticoagulation_plan,
    in_force,
    pseudonym,
)
from tests.unit.chronic.readings import action, evaluate, feed, only, reading, specs

PLAN = in_force(anticoagulation_plan())
ACKNOWLEDGE = AlertAction.ALERT_ACTION_ACKNOWLEDGE
RESOLVE = AlertAction.ALERT_ACTION_RESOLVE
HANDLED = AlertResolution.ALERT_RESOLUTION_HANDLED


def inr(value, reading_id, hours_ago=0):
    return reading(INR, value, reading_id, NOW - timedelta(hours=hours_ago))


def a_warning():
    """INR 3.4 yesterday: a warning alert, still open."""
    first = evaluate(inr(3.4, "inr-1", hours_ago=24), PLAN)
    return first.state, only(first, ALERT_RAISED).alert_id


def test_a_second_warning_joins_the_open_alert_instead_of_raising_another():
    state, alert_id = a_warning()
    second = evaluate(inr(3.6, "inr-2"), PLAN, state)

    assert second.outcome == "warning"
    assert specs(second) == [ALERT_UPDATED]
    update = only(second, ALERT_UPDATED)
    assert update.alert_id == alert_id
    assert (update.reading_id, update.episode_readings) == ("inr-2", 2)
    assert update.rule == "threshold.high"
    assert second.state.alerts[alert_id].reading_ids == ["inr-1", "inr-2"]
    assert second.state.alerts_raised == 1


def test_a_critical_value_supersedes_an_open_warning():
    state, warning_id = a_warning()
    critical = evaluate(inr(5.6, "inr-2"), PLAN, state)

    assert specs(critical) == [ALERT_RESOLVED, ALERT_RAISED]
    resolved = only(critical, ALERT_RESOLVED)
    assert resolved.alert_id == warning_id
    assert resolved.resolution == AlertResolution.ALERT_RESOLUTION_SUPERSEDED
    assert resolved.member_id == ""
    raised = only(critical, ALERT_RAISED)
    assert raised.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert raised.alert_id != warning_id
    assert list(raised.reading_ids) == ["inr-2"]
    assert critical.state.alerts[warning_id].status == RESOLVED
    assert critical.state.alerts[raised.alert_id].status == OPEN


@pytest.mark.parametrize("value", [5.8, 3.4])
def test_any_abnormal_value_joins_an_open_critical_alert(value):
    first = evaluate(inr(5.6, "inr-1", hours_ago=2), PLAN)
    then = evaluate(inr(value, "inr-2"), PLAN, first.state)
    assert specs(then) == [ALERT_UPDATED]
    assert only(then, ALERT_UPDATED).alert_id == only(first, ALERT_RAISED).alert_id


def test_a_value_back_in_target_does_not_close_the_alert_the_care_team_does():
    state, alert_id = a_warning()
    back = evaluate(inr(2.5, "inr-2"), PLAN, state)
    assert back.outcome == "in_range"
    assert back.facts == []
    assert back.state.alerts[alert_id].status == OPEN


def test_an_acknowledged_alert_still_gathers_the_episode():
    state, alert_id = a_warning()
    taken = apply_action(
        action(ACKNOWLEDGE, alert_id, action_id="a-1", member_id=NURSE),
        plan=PLAN,
        state=state,
        now=NOW,
    )
    again = evaluate(inr(3.5, "inr-2"), PLAN, taken.state)
    assert specs(again) == [ALERT_UPDATED]
    assert again.state.alerts[alert_id].status == ACKNOWLEDGED


def test_after_the_care_team_resolves_a_new_abnormal_value_opens_a_new_alert():
    state, alert_id = a_warning()
    handled = apply_action(
        action(RESOLVE, alert_id, action_id="a-1", member_id=GP, resolution=HANDLED),
        plan=PLAN,
        state=state,
        now=NOW - timedelta(hours=1),
    )
    assert specs(handled) == [ALERT_RESOLVED]
    resolved = only(handled, ALERT_RESOLVED)
    assert (resolved.alert_id, resolved.member_id, resolved.resolution) == (alert_id, GP, HANDLED)

    later = evaluate(inr(3.5, "inr-2"), PLAN, handled.state)
    assert specs(later) == [ALERT_RAISED]
    assert only(later, ALERT_RAISED).alert_id != alert_id
    assert later.state.alerts_raised == 2


def test_acknowledging_tells_how_long_the_alert_waited():
    state, alert_id = a_warning()
    # The warning was raised at NOW (evaluated then); the nurse takes it 12 minutes later.
    taken = apply_action(
        action(ACKNOWLEDGE, alert_id, action_id="a-1", member_id=NURSE),
        plan=PLAN,
        state=state,
        now=NOW + timedelta(minutes=12),
    )
    assert taken.outcome == "acknowledged"
    acknowledged = only(taken, ALERT_ACKNOWLEDGED)
    assert (acknowledged.alert_id, acknowledged.member_id) == (alert_id, NURSE)
    assert acknowledged.time_to_acknowledge.ToTimedelta() == timedelta(minutes=12)
    assert taken.state.alerts[alert_id].acknowledged_by == NURSE


def test_acknowledging_twice_publishes_once():
    state, alert_id = a_warning()
    ack = action(ACKNOWLEDGE, alert_id, action_id="a-1", member_id=NURSE)
    once = apply_action(ack, plan=PLAN, state=state, now=NOW)
    twice = apply_action(ack, plan=PLAN, state=once.state, now=NOW)
    other = apply_action(
        action(ACKNOWLEDGE, alert_id, action_id="a-2", member_id=GP),
        plan=PLAN,
        state=once.state,
        now=NOW,
    )
    assert (twice.outcome, twice.facts) == ("duplicate", [])
    assert (other.outcome, other.facts) == ("already_acknowledged", [])


def test_someone_outside_the_care_team_cannot_acknowledge():
    state, alert_id = a_warning()
    with pytest.raises(InvalidEventError, match="not on the patient's care team"):
        apply_action(
            action(ACKNOWLEDGE, alert_id, action_id="a-1", member_id="gp-9999"),
            plan=PLAN,
            state=state,
            now=NOW,
        )


def test_an_action_on_an_unknown_alert_is_refused():
    with pytest.raises(InvalidEventError, match="no alert"):
        apply_action(
            action(ACKNOWLEDGE, "no-such-alert", action_id="a-1", member_id=GP),
            plan=PLAN,
            state=a_warning()[0],
            now=NOW,
        )


@pytest.mark.parametrize(
    "resolution",
    [AlertResolution.ALERT_RESOLUTION_HANDLED, AlertResolution.ALERT_RESOLUTION_FALSE_ALARM],
)
def test_the_care_team_resolves_as_handled_or_false_alarm(resolution):
    state, alert_id = a_warning()
    done = apply_action(
        action(RESOLVE, alert_id, action_id="a-1", member_id=NURSE, resolution=resolution),
        plan=PLAN,
        state=state,
        now=NOW,
    )
    assert done.outcome == "resolved"
    assert only(done, ALERT_RESOLVED).resolution == resolution
    assert done.state.alerts[alert_id].status == RESOLVED


@pytest.mark.parametrize(
    "resolution",
    [
        AlertResolution.ALERT_RESOLUTION_UNSPECIFIED,
        AlertResolution.ALERT_RESOLUTION_SUPERSEDED,
        AlertResolution.ALERT_RESOLUTION_DATA_RECEIVED,
    ],
)
def test_the_care_team_cannot_claim_a_service_resolution(resolution):
    state, alert_id = a_warning()
    with pytest.raises(InvalidEventError, match="HANDLED or FALSE_ALARM"):
        apply_action(
            action(RESOLVE, alert_id, action_id="a-1", member_id=NURSE, resolution=resolution),
            plan=PLAN,
            state=state,
            now=NOW,
        )


def test_resolving_an_alert_already_resolved_publishes_nothing():
    state, alert_id = a_warning()
    resolve = action(RESOLVE, alert_id, action_id="a-1", member_id=NURSE, resolution=HANDLED)
    done = apply_action(resolve, plan=PLAN, state=state, now=NOW)
    other = action(RESOLVE, alert_id, action_id="a-2", member_id=GP, resolution=HANDLED)
    again = apply_action(other, plan=PLAN, state=done.state, now=NOW)
    assert (again.outcome, again.facts) == ("already_resolved", [])


def test_the_episode_reading_list_follows_every_abnormal_value():
    readings = [inr(3.4, "inr-1", 48), inr(3.5, "inr-2", 24), inr(3.7, "inr-3", 0)]
    state, outcomes = feed(readings, PLAN)
    [alert] = state.alerts.values()
    assert alert.reading_ids == ["inr-1", "inr-2", "inr-3"]
    assert [specs(o) for o in outcomes] == [[ALERT_RAISED], [ALERT_UPDATED], [ALERT_UPDATED]]


# Run end: back in range after an episode, the next abnormal value is a new alert.

ESCALATION_DUE = AlertAction.ALERT_ACTION_ESCALATION_DUE


def day(n, minutes=0):
    return NOW + timedelta(days=n, minutes=minutes)


def acknowledged_critical():
    """INR 5.6 measured at NOW: a critical alert, which the GP acknowledges 10 minutes later."""
    first = evaluate(reading(INR, 5.6, "inr-1", NOW), PLAN, now=day(0, 5))
    alert_id = only(first, ALERT_RAISED).alert_id
    ack = action(ACKNOWLEDGE, alert_id, action_id="ack-1", member_id=GP, now=day(0, 10))
    taken = apply_action(ack, plan=PLAN, state=first.state, now=day(0, 10))
    assert specs(taken) == [ALERT_ACKNOWLEDGED]
    return taken.state, alert_id


def back_in_range(state):
    """Five daily INRs in target after the critical one."""
    for n, value in enumerate([2.4, 2.6, 2.8, 2.5, 2.7], start=1):
        outcome = evaluate(reading(INR, value, f"inr-ok-{n}", day(n)), PLAN, state, day(n, 5))
        assert (outcome.outcome, outcome.facts) == ("in_range", [])
        state = outcome.state
    return state


def test_an_in_range_value_after_the_episode_ends_its_run_the_alert_stays_open():
    state, alert_id = acknowledged_critical()
    state = back_in_range(state)
    alert = state.alerts[alert_id]
    assert alert.run_ended
    assert alert.status == ACKNOWLEDGED
    assert alert.reading_ids == ["inr-1"]
    assert state.running_episode(INR) is None
    assert state.open_alert(INR, "values") is alert


def test_a_critical_value_a_week_after_the_run_ended_raises_a_new_alert_that_escalates():
    state, first_id = acknowledged_critical()
    state = back_in_range(state)
    relapse = evaluate(reading(INR, 8.0, "inr-relapse", day(12)), PLAN, state, day(12, 5))

    assert relapse.outcome == "critical"
    assert specs(relapse) == [ALERT_RAISED]
    raised = only(relapse, ALERT_RAISED)
    assert raised.alert_id != first_id
    assert raised.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert list(raised.reading_ids) == ["inr-relapse"]
    assert raised.notified.member_id == GP
    assert relapse.state.alerts_raised == 2
    # The first alert is left as the GP left it: acknowledged, not resolved, unchanged.
    first = relapse.state.alerts[first_id]
    assert (first.status, first.reading_ids) == (ACKNOWLEDGED, ["inr-1"])

    # Nobody acknowledges the new one: after 30 minutes it goes to the nurse.
    at = day(12, 35)
    [due] = [a for a in due_actions(PATIENT, PLAN, relapse.state, at) if a.action == ESCALATION_DUE]
    assert (due.alert_id, due.escalation_step) == (raised.alert_id, 1)
    escalated = apply_action(due, plan=PLAN, state=relapse.state, now=at)
    assert specs(escalated) == [ALERT_ESCALATED]
    assert only(escalated, ALERT_ESCALATED).notified.member_id == NURSE

    # The first alert ends only when the care team resolves it.
    done = apply_action(
        action(RESOLVE, first_id, action_id="res-1", member_id=GP, resolution=HANDLED),
        plan=PLAN,
        state=escalated.state,
        now=day(12, 40),
    )
    assert only(done, ALERT_RESOLVED).alert_id == first_id
    assert done.state.alerts[first_id].status == RESOLVED
    assert done.state.alerts[raised.alert_id].status == OPEN


def test_after_a_new_alert_further_abnormal_values_join_it():
    state, first_id = acknowledged_critical()
    state = back_in_range(state)
    relapse = evaluate(reading(INR, 8.0, "inr-relapse", day(12)), PLAN, state, day(12, 5))
    new_id = only(relapse, ALERT_RAISED).alert_id
    next_day = evaluate(reading(INR, 6.0, "inr-next", day(13)), PLAN, relapse.state, day(13, 5))
    assert specs(next_day) == [ALERT_UPDATED]
    assert only(next_day, ALERT_UPDATED).alert_id == new_id
    assert next_day.state.alerts_raised == 2
    assert next_day.state.alerts[first_id].reading_ids == ["inr-1"]


def test_a_late_in_range_value_measured_before_the_last_abnormal_one_does_not_end_the_run():
    first = evaluate(reading(INR, 5.6, "inr-1", NOW), PLAN, now=day(0, 5))
    alert_id = only(first, ALERT_RAISED).alert_id
    joined = evaluate(reading(INR, 3.4, "inr-2", day(1)), PLAN, first.state, day(1, 5))
    assert specs(joined) == [ALERT_UPDATED]
    # A value measured between the two, sent late: in range, but inside the episode.
    late = evaluate(reading(INR, 2.5, "inr-late", day(0, 720)), PLAN, joined.state, day(1, 10))
    assert (late.outcome, late.facts) == ("in_range", [])
    assert not late.state.alerts[alert_id].run_ended
    again = evaluate(reading(INR, 3.6, "inr-3", day(2)), PLAN, late.state, day(2, 5))
    assert specs(again) == [ALERT_UPDATED]
    assert only(again, ALERT_UPDATED).alert_id == alert_id
    assert again.state.alerts[alert_id].reading_ids == ["inr-1", "inr-2", "inr-3"]


# Alert ids: derived per patient, stable on redelivery.

OTHER_PATIENT = pseudonym("patient-2")


def test_two_patients_sending_the_same_reading_id_get_different_alerts():
    mine = evaluate(reading(INR, 5.6, "r-1", NOW), in_force(anticoagulation_plan()))
    theirs = evaluate(
        reading(INR, 5.6, "r-1", NOW, patient=OTHER_PATIENT),
        in_force(anticoagulation_plan(patient=OTHER_PATIENT)),
    )
    mine_raised, theirs_raised = only(mine, ALERT_RAISED), only(theirs, ALERT_RAISED)
    assert (mine_raised.patient_pseudonym, theirs_raised.patient_pseudonym) == (
        PATIENT,
        OTHER_PATIENT,
    )
    assert mine_raised.alert_id != theirs_raised.alert_id
    assert mine.facts[0].event_id != theirs.facts[0].event_id


@pytest.mark.parametrize("earlier", [False, True])
def test_a_reading_redelivered_to_the_same_state_raises_the_same_alert_id(earlier):
    # The agent crashed after publishing, before its state was saved: the reading comes
    # again to the state as it was; the alert (and its event id) must be the same.
    state = PatientState()
    if earlier:
        state = a_warning()[0]
        state = apply_action(
            action(RESOLVE, state.last_alert_id, action_id="a-1", member_id=GP, resolution=HANDLED),
            plan=PLAN,
            state=state,
            now=NOW,
        ).state
    one = reading(INR, 5.6, "r-1", NOW + timedelta(hours=1))
    first = evaluate(one, PLAN, state, NOW + timedelta(hours=1))
    redelivered = evaluate(one, PLAN, state, NOW + timedelta(hours=1))
    assert only(first, ALERT_RAISED).alert_id == only(redelivered, ALERT_RAISED).alert_id
    assert first.facts[-1].event_id == redelivered.facts[-1].event_id
    # Once the state is saved, the same reading is a duplicate.
    assert evaluate(one, PLAN, first.state).outcome == "duplicate"


# The lab validates results; it does not act on alerts.


@pytest.mark.parametrize(
    ("kind", "resolution"),
    [
        (ACKNOWLEDGE, AlertResolution.ALERT_RESOLUTION_UNSPECIFIED),
        (RESOLVE, HANDLED),
        (RESOLVE, AlertResolution.ALERT_RESOLUTION_FALSE_ALARM),
    ],
)
def test_the_lab_cannot_acknowledge_or_resolve_an_alert(kind, resolution):
    state, alert_id = a_warning()
    with pytest.raises(InvalidEventError, match="not on the patient's care team"):
        apply_action(
            action(kind, alert_id, action_id="lab-1", member_id=LAB, resolution=resolution),
            plan=PLAN,
            state=state,
            now=NOW,
        )
    assert state.alerts[alert_id].status == OPEN
    assert not state.has_seen("lab-1")
