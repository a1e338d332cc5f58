"""One fall is one incident, one call to the SAMU and one fall in the count, however many
times the detector reports it; a new fall is a new incident."""

from datetime import timedelta

from emeuse.home.v1.home_events_pb2 import IncidentAction, IncidentOutcome, SensorKind
from services.home.domain.home import RECENT_IDS_KEPT
from services.home.incidents import apply_action
from tests.unit.home.homes import (
    DAUGHTER,
    NEIGHBOUR,
    SAMU,
    action,
    at,
    enrolled,
    escalated,
    fall,
    feed,
    motion,
    raised,
    report,
    run,
)


def test_a_fall_reported_again_at_3_11_while_nobody_answered_is_the_same_incident():
    state, first = feed(enrolled(), fall(at("03:00")))
    [incident] = raised(first)
    state, steps = run(state, at("03:01"), at("03:10"))
    state, again = feed(state, fall(at("03:11")))
    assert raised(again) == []
    assert [o.outcome for o in again] == ["joined"]
    state, more = run(state, at("03:12"), at("03:40"))
    calls = escalated(steps + more)
    assert [(e.incident_id, e.notified.contact_id) for e in calls] == [
        (incident.incident_id, NEIGHBOUR),
        (incident.incident_id, SAMU),
    ]
    assert len(state.incidents[incident.incident_id].sensor_event_ids) == 2
    assert state.falls == [at("03:00")]  # one fall, counted once


def test_a_detector_re_alerting_every_11_minutes_for_an_hour_raises_one_incident():
    reports = [fall(at("03:00") + timedelta(minutes=11 * i)) for i in range(6)]
    state, outcomes = feed(enrolled(), *reports)
    [incident] = raised(outcomes)
    assert incident.falls_in_last_30_days == 1
    assert [o.outcome for o in outcomes] == ["incident"] + ["joined"] * 5
    assert len(state.falls) == 1


def test_a_re_alert_after_the_daughter_took_charge_joins_her_incident():
    state, first = feed(enrolled(), fall(at("03:00")))
    [incident] = raised(first)
    state = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
            incident_id=incident.incident_id,
            contact_id=DAUGHTER,
        ),
        state=state,
        now=at("03:04"),
    ).state
    state, again = feed(state, fall(at("03:20")))
    assert raised(again) == []
    assert len(state.incidents[incident.incident_id].sensor_event_ids) == 2


def test_a_fall_the_next_day_is_a_new_incident_and_a_second_fall_even_if_the_first_is_open():
    state, first = feed(enrolled(), fall(at("03:00")))
    [one] = raised(first)
    state = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
            incident_id=one.incident_id,
            contact_id=DAUGHTER,
        ),
        state=state,
        now=at("03:04"),
    ).state
    # Nobody resolved the first one; she falls again the next afternoon.
    state, second = feed(state, fall(at("15:00", day=1)))
    [two] = raised(second)
    assert two.incident_id != one.incident_id
    assert two.falls_in_last_30_days == 2


def test_a_second_fall_after_the_first_was_resolved_is_a_new_incident():
    state, first = feed(enrolled(), fall(at("10:00")))
    [one] = raised(first)
    state = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_RESOLVE,
            incident_id=one.incident_id,
            contact_id=DAUGHTER,
            outcome=IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME,
        ),
        state=state,
        now=at("10:05"),
    ).state
    state, second = feed(state, fall(at("10:20")))
    [two] = raised(second)
    assert two.falls_in_last_30_days == 2


def test_an_old_fall_re_sent_after_hundreds_of_heartbeats_is_still_a_duplicate():
    event = fall(at("10:00"))
    state, first = feed(enrolled(), event)
    [incident] = raised(first)
    state = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_RESOLVE,
            incident_id=incident.incident_id,
            contact_id=DAUGHTER,
            outcome=IncidentOutcome.INCIDENT_OUTCOME_FALSE_ALARM,
        ),
        state=state,
        now=at("10:02"),
    ).state
    devices = ("fall-01", "motion-01", "door-01", "thermo-01")
    beats = [
        report(SensorKind.SENSOR_KIND_HEARTBEAT, at("10:05") + timedelta(minutes=m), device_id=d)
        for m in range(0, 5 * RECENT_IDS_KEPT // len(devices), 5)
        for d in devices
    ]
    state, _ = feed(state, *beats)
    state, again = feed(state, event, now=at("13:00"))  # the partner re-sends it
    assert [o.outcome for o in again] == ["duplicate"]
    _, later = run(state, at("13:01"), at("13:40"))
    assert [e for e in escalated(later) if e.incident_id == incident.incident_id] == []
    assert not state.incidents[incident.incident_id].is_open
    assert state.falls == [at("10:00")]


def test_a_fall_whose_incident_exists_is_never_raised_again_even_when_its_id_was_forgotten():
    event = fall(at("10:00"))
    state, first = feed(enrolled(), event)
    [incident] = raised(first)
    state = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_RESOLVE,
            incident_id=incident.incident_id,
            contact_id=DAUGHTER,
            outcome=IncidentOutcome.INCIDENT_OUTCOME_FALSE_ALARM,
        ),
        state=state,
        now=at("10:02"),
    ).state
    forgetful = state.changed()
    forgetful.seen, forgetful.seen_alarms = [], []
    state, again = feed(forgetful, event, now=at("13:00"))
    assert raised(again) == []
    assert not state.incidents[incident.incident_id].is_open
    assert state.falls == [at("10:00")]


def test_a_fall_reported_hours_late_after_she_moved_about_tells_the_contacts_not_the_samu():
    state, _ = feed(enrolled(), motion(at("09:00")), motion(at("11:30")))
    state, late = feed(state, fall(at("10:00")), now=at("11:45"))
    [incident] = raised(late)
    assert incident.chain_length == 2  # daughter, neighbour: no SAMU
    assert incident.reason.startswith("fall.detected.late")
    assert incident.falls_in_last_30_days == 1
    _, steps = run(state, at("11:46"), at("13:00"))
    assert [e.notified.contact_id for e in escalated(steps)] == [NEIGHBOUR]


def test_a_fall_reported_late_with_no_activity_since_still_goes_to_the_samu():
    state, _ = feed(enrolled(), motion(at("09:00")))
    state, late = feed(state, fall(at("10:00")), now=at("11:45"))
    [incident] = raised(late)
    assert incident.chain_length == 3
