"""An incident a contact acknowledged and nobody resolved does not switch its detector
off: the condition ending closes it (CLEARED) and the next episode raises a new one; and
a home never holds more than OPEN_INCIDENTS_KEPT open incidents."""

from datetime import timedelta

from emeuse.home.v1.home_events_pb2 import (
    DoorState,
    IncidentAction,
    IncidentKind,
    IncidentOutcome,
    SensorKind,
)
from services.home.domain.home import OPEN_INCIDENTS_KEPT, HomeState
from services.home.incidents import apply_action
from tests.unit.home.homes import (
    DAUGHTER,
    PROVIDER,
    action,
    at,
    door,
    enrolled,
    fall,
    feed,
    home,
    motion,
    raised,
    report,
    resolved,
    run,
    tick,
)

CLEARED = IncidentOutcome.INCIDENT_OUTCOME_CLEARED


def acknowledged(state: HomeState, incident_id: str, contact: str = DAUGHTER) -> HomeState:
    ack = action(
        action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
        incident_id=incident_id,
        contact_id=contact,
    )
    return apply_action(ack, state=state, now=state.incidents[incident_id].raised_at).state


def test_an_acknowledged_inactivity_closes_when_she_moves_and_the_next_one_is_raised():
    state, _ = feed(enrolled(), motion(at("07:05")))
    state, outcomes = run(state, at("09:00"), at("09:10"))
    [first] = raised(outcomes)
    state = acknowledged(state, first.incident_id)
    state, moved = feed(state, motion(at("09:30")))
    [closed] = resolved(moved)
    assert (closed.incident_id, closed.outcome) == (first.incident_id, CLEARED)
    # The next morning without motion is a new episode, a new incident.
    state, later = run(state, at("09:31"), at("12:00", day=1), every=timedelta(minutes=10))
    kinds = [i.kind for i in raised(later)]
    assert kinds and set(kinds) == {IncidentKind.INCIDENT_KIND_INACTIVITY}


def test_an_acknowledged_night_wandering_closes_when_she_comes_back():
    state, _ = feed(
        enrolled(),
        door(at("03:00")),
        door(at("03:00") + timedelta(seconds=20), DoorState.DOOR_STATE_CLOSED),
    )
    state, outcomes = run(state, at("03:15"), at("03:16"))
    [wandering] = raised(outcomes)
    state = acknowledged(state, wandering.incident_id)
    state, back = feed(state, door(at("03:40")))
    assert [(r.incident_id, r.outcome) for r in resolved(back)] == [
        (wandering.incident_id, CLEARED)
    ]


def test_an_acknowledged_silent_device_closes_when_it_reports_and_can_go_silent_again():
    state = enrolled(home(thresholds={"device_offline_after": "3600s"}))
    heartbeat = SensorKind.SENSOR_KIND_HEARTBEAT
    devices = ("fall-01", "motion-01", "door-01", "thermo-01")
    for hour in ("08:00", "09:00", "10:00", "11:00", "12:00"):
        beats = [report(heartbeat, at(hour), device_id=d) for d in devices if d != "door-01"]
        state, _ = feed(state, *beats)
    state, first = tick(state, at("08:00"))
    [offline] = [i for i in raised(first) if i.device_id == "door-01"]
    state = acknowledged(state, offline.incident_id, PROVIDER)
    state, back = feed(state, report(heartbeat, at("12:10"), device_id="door-01"))
    assert [r.outcome for r in resolved(back)] == [CLEARED]
    _, again = tick(state, at("13:10"))
    assert "door-01" in [i.device_id for i in raised(again)]


def test_a_home_holds_at_most_so_many_open_incidents_the_oldest_taken_one_expires():
    state = enrolled()
    ids = []
    for day in range(OPEN_INCIDENTS_KEPT + 1):
        state, outcomes = feed(state, fall(at("10:00", day=day - 60)))
        [incident] = raised(outcomes)
        ids.append(incident.incident_id)
        if day < OPEN_INCIDENTS_KEPT:
            state = acknowledged(state, incident.incident_id)
        last = outcomes
    assert sum(1 for i in state.incidents.values() if i.is_open) == OPEN_INCIDENTS_KEPT
    [expired] = resolved(last)
    assert expired.incident_id == ids[0]
    assert expired.outcome == IncidentOutcome.INCIDENT_OUTCOME_EXPIRED
    assert state.incidents[ids[-1]].is_open
