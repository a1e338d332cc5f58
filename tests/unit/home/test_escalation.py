"""The escalation chain: a fall tells her daughter, then the neighbour, then the SAMU,
each after the previous one's delay; an acknowledgement stops it; each step once."""

from datetime import timedelta

import pytest

from emeuse.home.v1.home_events_pb2 import (
    IncidentAction,
    IncidentKind,
    IncidentOutcome,
    SensorKind,
)
from emeuse.registry import INCIDENT_ACKNOWLEDGED, INCIDENT_RESOLVED
from emeuse.runtime.codec import InvalidEventError
from services.home.domain.home import ROLE_EMERGENCY_SERVICE
from services.home.incidents import apply_action, due_actions
from tests.unit.home.homes import (
    DAUGHTER,
    NEIGHBOUR,
    RESIDENT,
    SAMU,
    action,
    at,
    enrolled,
    escalated,
    fall,
    feed,
    published,
    raised,
    report,
    run,
    tick,
)

FELL = at("10:00")


def a_fall():
    state, outcomes = feed(enrolled(), fall(FELL))
    [incident] = raised(outcomes)
    return state, incident.incident_id


def after(minutes: float):
    return FELL + timedelta(minutes=minutes)


def test_a_fall_tells_the_first_contact_at_once():
    _state, outcomes = feed(enrolled(), fall(FELL))
    [incident] = raised(outcomes)
    assert incident.kind == IncidentKind.INCIDENT_KIND_FALL
    assert incident.notified.contact_id == DAUGHTER
    assert incident.chain_length == 3  # daughter, neighbour, SAMU
    assert incident.falls_in_last_30_days == 1


def test_nobody_answers_the_fall_goes_contact_by_contact_to_the_samu():
    state, incident_id = a_fall()
    state, outcomes = run(state, after(1), after(60))
    steps = escalated(outcomes)
    assert [(e.notified.step, e.notified.contact_id) for e in steps] == [
        (1, NEIGHBOUR),
        (2, SAMU),
    ]
    assert steps[1].notified.role == ROLE_EMERGENCY_SERVICE
    # Ten minutes each: the neighbour at 10:10, the SAMU at 10:20, and then nothing more.
    times = [e.escalated_at.ToDatetime() for e in steps]
    assert [t - times[0] for t in times] == [timedelta(0), timedelta(minutes=10)]
    assert state.incidents[incident_id].next_escalation_at is None


def test_nothing_escalates_before_the_contacts_delay():
    state, _ = a_fall()
    assert due_actions(RESIDENT, state, after(9)) == []


def test_the_neighbour_who_acknowledges_stops_the_chain():
    state, incident_id = a_fall()
    state, first = run(state, after(1), after(12))
    assert [e.notified.contact_id for e in escalated(first)] == [NEIGHBOUR]
    ack = action(
        action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
        incident_id=incident_id,
        contact_id=NEIGHBOUR,
    )
    taken = apply_action(ack, state=state, now=after(13))
    [acknowledged] = published([taken], INCIDENT_ACKNOWLEDGED)
    assert acknowledged.contact_id == NEIGHBOUR
    assert acknowledged.step == 1
    assert acknowledged.time_to_acknowledge.ToTimedelta() == timedelta(minutes=13)
    _, later = run(taken.state, after(14), after(90))
    assert escalated(later) == []  # the SAMU is never called


def test_the_same_step_applied_twice_escalates_once():
    state, _ = a_fall()
    [due] = due_actions(RESIDENT, state, after(10))
    once = apply_action(due, state=state, now=after(10))
    twice = apply_action(due, state=once.state, now=after(11))
    assert (twice.outcome, twice.facts) == ("duplicate", [])


def test_a_stale_step_that_crossed_a_later_one_does_nothing():
    state, incident_id = a_fall()
    state, _ = run(state, after(10), after(20))
    stale = action(
        action=IncidentAction.INCIDENT_ACTION_ESCALATION_DUE,
        incident_id=incident_id,
        escalation_step=1,
    )
    outcome = apply_action(stale, state=state, now=after(25))
    assert (outcome.outcome, outcome.facts) == ("not_due", [])
    assert outcome.state.incidents[incident_id].step == 2


def test_a_step_that_crossed_an_acknowledgement_does_nothing():
    state, incident_id = a_fall()
    [due] = due_actions(RESIDENT, state, after(10))
    ack = action(
        action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
        incident_id=incident_id,
        contact_id=DAUGHTER,
    )
    state = apply_action(ack, state=state, now=after(9)).state
    outcome = apply_action(due, state=state, now=after(10))
    assert (outcome.outcome, outcome.facts) == ("not_due", [])


def test_resolution_closes_with_the_outcome_and_injury():
    state, incident_id = a_fall()
    resolve = action(
        action=IncidentAction.INCIDENT_ACTION_RESOLVE,
        incident_id=incident_id,
        contact_id=DAUGHTER,
        outcome=IncidentOutcome.INCIDENT_OUTCOME_SENT_TO_HOSPITAL,
        injury=True,
    )
    outcome = apply_action(resolve, state=state, now=after(5))
    [closed] = published([outcome], INCIDENT_RESOLVED)
    assert closed.outcome == IncidentOutcome.INCIDENT_OUTCOME_SENT_TO_HOSPITAL
    assert closed.injury
    assert (closed.resolved_by, closed.kind) == (DAUGHTER, IncidentKind.INCIDENT_KIND_FALL)
    _, later = run(outcome.state, after(6), after(60))
    assert escalated(later) == []


def test_a_contact_outside_the_chain_cannot_act():
    state, incident_id = a_fall()
    stranger = action(
        action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
        incident_id=incident_id,
        contact_id="family-9999",
    )
    with pytest.raises(InvalidEventError, match="not in the incident's chain"):
        apply_action(stranger, state=state, now=after(1))


def test_a_contact_cannot_mark_an_incident_cleared():
    state, incident_id = a_fall()
    cleared = action(
        action=IncidentAction.INCIDENT_ACTION_RESOLVE,
        incident_id=incident_id,
        contact_id=DAUGHTER,
        outcome=IncidentOutcome.INCIDENT_OUTCOME_CLEARED,
    )
    with pytest.raises(InvalidEventError, match="FALSE_ALARM"):
        apply_action(cleared, state=state, now=after(1))


def test_a_panic_button_also_ends_at_the_samu():
    state, outcomes = feed(
        enrolled(), report(SensorKind.SENSOR_KIND_PANIC_BUTTON, FELL, device_id="fall-01")
    )
    [panic] = raised(outcomes)
    assert panic.kind == IncidentKind.INCIDENT_KIND_PANIC
    _, steps = run(state, after(1), after(30))
    assert [e.notified.contact_id for e in escalated(steps)] == [NEIGHBOUR, SAMU]


def test_inactivity_goes_down_the_contacts_but_not_to_the_samu():
    state, _ = feed(enrolled(), report(SensorKind.SENSOR_KIND_MOTION, at("07:10")))
    state, outcomes = run(state, at("09:10"), at("10:30"))
    [incident] = raised(outcomes)
    assert incident.chain_length == 2
    assert [e.notified.contact_id for e in escalated(outcomes)] == [NEIGHBOUR]


def test_escalation_resumes_from_the_stored_deadline_after_a_restart():
    # The state is all there is: a timer started from the stored state (as after a
    # restart or a rebalance) finds the step due and applies it once.
    state, _incident_id = a_fall()
    restored = type(state).from_json(state.to_json())
    state, outcomes = tick(restored, after(30))
    [step] = escalated(outcomes)
    assert step.notified.contact_id == NEIGHBOUR
    _, again = tick(type(state).from_json(state.to_json()), after(30))
    assert escalated(again) == []
