"""One alert per episode, and what the care team does with it: acknowledge, resolve."""

from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertAction, AlertResolution, AlertSeverity
from emeuse.registry import ALERT_ACKNOWLEDGED, ALERT_RAISED, ALERT_RESOLVED, ALERT_UPDATED
from emeuse.runtime.codec import InvalidEventError
from services.chronic.alerts import apply_action
from services.chronic.domain.monitoring import ACKNOWLEDGED, OPEN, RESOLVED
from tests.unit.chronic.plans import GP, INR, NOW, NURSE, anticoagulation_plan, in_force
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
