"""Detectors over realistic days in the resident's home: inactivity in her active hours,
night wandering, a cold home, a silent device, falls counted over 30 days."""

from datetime import timedelta

import pytest

from emeuse.home.v1.home_events_pb2 import (
    DoorState,
    IncidentAction,
    IncidentKind,
    IncidentOutcome,
    SensorKind,
)
from emeuse.runtime.codec import InvalidEventError
from services.home.domain.home import ROLE_DEVICE_PROVIDER
from services.home.handlers import record_sensor_event
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
    temperature,
    tick,
)

CLOSED = DoorState.DOOR_STATE_CLOSED


def test_a_morning_without_motion_raises_inactivity_two_hours_after_she_usually_wakes():
    # Last seen going to bed at 22:10 the day before; nothing since.
    state, _ = feed(enrolled(), motion(at("22:10", day=-1)))
    state, night = run(state, at("22:15", day=-1), at("08:59"))
    assert raised(night) == []  # asleep: quiet hours, then less than 2 h since 7:00
    state, morning = tick(state, at("09:00"))
    [incident] = raised(morning)
    assert incident.kind == IncidentKind.INCIDENT_KIND_INACTIVITY
    assert incident.occurred_at.ToDatetime().hour == 6  # 7:00 in Paris is 6:00 UTC in winter
    assert incident.notified.contact_id == DAUGHTER
    assert incident.reason.startswith("inactivity.active_hours")


def test_motion_at_7_20_moves_the_inactivity_deadline_to_9_20():
    state, _ = feed(enrolled(), motion(at("07:20")))
    state, before = run(state, at("07:21"), at("09:19"))
    assert raised(before) == []
    _, after = tick(state, at("09:20"))
    assert [i.kind for i in raised(after)] == [IncidentKind.INCIDENT_KIND_INACTIVITY]


def test_one_inactivity_episode_raises_one_incident_and_motion_clears_it():
    state, _ = feed(enrolled(), motion(at("07:05")))
    state, outcomes = run(state, at("09:00"), at("11:00"))
    [incident] = raised(outcomes)
    state, back = feed(state, motion(at("11:03")))
    [cleared] = resolved(back)
    assert cleared.incident_id == incident.incident_id
    assert cleared.outcome == 4  # INCIDENT_OUTCOME_CLEARED: she was moving again
    assert cleared.resolved_by == "emeuse/home"
    assert not state.incidents[incident.incident_id].is_open


def test_a_door_at_3_with_return_at_3_05_is_not_an_incident():
    state, _ = feed(
        enrolled(),
        door(at("03:00")),
        door(at("03:00") + timedelta(seconds=20), DoorState.DOOR_STATE_CLOSED),
        door(at("03:05")),
        door(at("03:05") + timedelta(seconds=15), DoorState.DOOR_STATE_CLOSED),
    )
    state, outcomes = run(state, at("03:06"), at("04:00"))
    assert raised(outcomes) == []
    assert state.door_watch is None


def test_a_return_at_3_05_delivered_before_the_3_00_opening_is_not_an_incident():
    opened, closed = door(at("03:00")), door(at("03:00") + timedelta(seconds=20), CLOSED)
    back, shut = door(at("03:05")), door(at("03:05") + timedelta(seconds=15), CLOSED)
    # The hub held the 3:00 events: they arrive after the return.
    state, _ = feed(enrolled(), back, shut, opened, closed, now=at("03:06"))
    state, outcomes = run(state, at("03:06"), at("04:00"))
    assert raised(outcomes) == []
    assert state.door_watch is None


def test_movement_indoors_delivered_before_the_door_events_means_she_did_not_go_out():
    opened, closed = door(at("02:30")), door(at("02:30") + timedelta(seconds=30), CLOSED)
    state, _ = feed(enrolled(), motion(at("02:31")), opened, closed, now=at("02:32"))
    _, outcomes = run(state, at("02:32"), at("03:30"))
    assert raised(outcomes) == []


def test_out_back_in_then_out_again_is_watched_from_the_second_opening():
    state, _ = feed(
        enrolled(),
        door(at("02:30")),
        door(at("02:30") + timedelta(seconds=30), CLOSED),
        motion(at("02:31")),
        door(at("03:00")),
        door(at("03:00") + timedelta(seconds=20), CLOSED),
    )
    state, outcomes = run(state, at("03:01"), at("03:30"))
    [incident] = raised(outcomes)
    assert incident.kind == IncidentKind.INCIDENT_KIND_NIGHT_WANDERING
    assert incident.occurred_at.seconds == int(at("03:00").timestamp())


def test_a_door_event_without_its_state_is_refused_not_guessed():
    unknown = door(at("03:00"), DoorState.DOOR_STATE_UNSPECIFIED)
    with pytest.raises(InvalidEventError, match="door_state"):
        record_sensor_event(unknown, state=enrolled(), now=at("03:00"))


def test_a_door_at_3_without_return_raises_night_wandering_after_15_minutes():
    state, _ = feed(
        enrolled(),
        door(at("03:00")),
        door(at("03:00") + timedelta(seconds=20), DoorState.DOOR_STATE_CLOSED),
    )
    state, before = run(state, at("03:01"), at("03:14"))
    assert raised(before) == []
    state, outcomes = run(state, at("03:15"), at("03:40"))
    [incident] = raised(outcomes)
    assert incident.kind == IncidentKind.INCIDENT_KIND_NIGHT_WANDERING
    # She comes back at 3:45: the incident nobody took charge of yet is cleared.
    _, back = feed(state, door(at("03:45")))
    assert [r.incident_id for r in resolved(back)] == [incident.incident_id]


def test_movement_indoors_after_the_door_closed_means_she_did_not_go_out():
    state, _ = feed(
        enrolled(),
        door(at("02:30")),
        door(at("02:30") + timedelta(seconds=30), DoorState.DOOR_STATE_CLOSED),
        motion(at("02:31")),
    )
    _, outcomes = run(state, at("02:32"), at("03:30"))
    assert raised(outcomes) == []


def test_a_door_in_the_evening_is_not_watched():
    state, _ = feed(enrolled(), door(at("18:30")))
    assert state.door_watch is None


def test_a_return_reported_late_still_counts():
    state, _ = feed(enrolled(), door(at("03:00")))
    # The return at 3:05 reaches the platform at 3:10, before the deadline.
    state, _ = feed(state, door(at("03:05")), now=at("03:10"))
    _, outcomes = run(state, at("03:11"), at("03:30"))
    assert raised(outcomes) == []


def every_minute(start: str, minutes: int, celsius: float):
    """A thermometer reporting once a minute, as most do."""
    return [temperature(at(start) + timedelta(minutes=m), celsius) for m in range(minutes)]


def test_a_home_cold_for_an_hour_raises_too_cold_once_and_warming_up_clears_it():
    state, _ = feed(enrolled(), motion(at("08:00")))
    state, outcomes = feed(state, *every_minute("08:00", 181, 15.5))
    [incident] = raised(outcomes)
    assert incident.kind == IncidentKind.INCIDENT_KIND_TOO_COLD
    assert incident.reason.startswith("too_cold.sustained: below 17 °C for 60 min")
    assert incident.occurred_at.seconds == int(at("08:00").timestamp())
    assert incident.raised_at.seconds == int(at("09:00").timestamp())
    state, warm = feed(state, temperature(at("11:01"), 19.5))
    assert [r.incident_id for r in resolved(warm)] == [incident.incident_id]


def test_a_short_cold_spell_while_airing_the_room_raises_nothing():
    state, _ = feed(
        enrolled(),
        *every_minute("09:00", 40, 14.0),
        *every_minute("09:40", 20, 19.0),
        *every_minute("10:00", 40, 15.0),
        *every_minute("10:40", 60, 20.0),
    )
    assert not state.incidents


def test_a_reading_delivered_late_lands_where_it_belongs():
    # A warm reading from 8:30, late by an hour, does not cut a cold run that began at 8:31...
    state, _ = feed(enrolled(), *every_minute("08:31", 50, 15.0))
    state, late = feed(state, temperature(at("08:30"), 19.0), now=at("09:21"))
    assert raised(late) == []
    _, outcomes = feed(state, *every_minute("09:21", 15, 15.0))
    [incident] = raised(outcomes)
    assert incident.occurred_at.seconds == int(at("08:31").timestamp())
    # ...and a cold reading from 8:20, late, before a warm one at 8:30, does not lengthen it.
    state, _ = feed(enrolled(), temperature(at("08:30"), 19.0), *every_minute("08:31", 50, 15.0))
    state, late = feed(state, temperature(at("08:20"), 15.0), now=at("09:21"))
    assert raised(late) == []
    assert state.temperature is not None and state.temperature.since == at("08:31")


def test_one_cold_spell_resolved_by_a_contact_is_not_raised_again_while_it_lasts():
    state, outcomes = feed(enrolled(), *every_minute("08:00", 61, 15.5))
    [incident] = raised(outcomes)
    state = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_RESOLVE,
            incident_id=incident.incident_id,
            contact_id=DAUGHTER,
            outcome=IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME,
        ),
        state=state,
        now=at("09:05"),
    ).state
    state, later = feed(state, *every_minute("09:01", 120, 15.5), temperature(at("07:59"), 15.5))
    assert raised(later) == []


def test_a_hot_afternoon_raises_too_hot():
    _state, outcomes = feed(
        enrolled(), *every_minute("14:00", 30, 30.5), *every_minute("14:30", 31, 31.5)
    )
    assert [i.kind for i in raised(outcomes)] == [IncidentKind.INCIDENT_KIND_TOO_HOT]


def test_a_silent_device_is_a_technical_incident_for_the_provider():
    configuration = home(thresholds={"device_offline_after": "3600s"})
    state = enrolled(configuration)
    heartbeat = SensorKind.SENSOR_KIND_HEARTBEAT
    state, _ = feed(
        state,
        *[report(heartbeat, at("08:00"), device_id=d) for d in ("fall-01", "door-01", "thermo-01")],
        motion(at("08:00")),
        *[report(heartbeat, at("09:00"), device_id=d) for d in ("fall-01", "door-01", "thermo-01")],
    )
    state, outcomes = tick(state, at("09:00"))
    [offline] = raised(outcomes)
    assert offline.kind == IncidentKind.INCIDENT_KIND_DEVICE_OFFLINE
    assert offline.device_id == "motion-01"
    assert (offline.notified.contact_id, offline.notified.role) == (PROVIDER, ROLE_DEVICE_PROVIDER)
    assert offline.chain_length == 1
    _, again = tick(state, at("09:30"))
    assert raised(again) == []  # one incident per silence
    _, back = feed(state, report(heartbeat, at("09:40"), device_id="motion-01"))
    assert [r.incident_id for r in resolved(back)] == [offline.incident_id]


def test_a_stale_report_from_a_silent_device_does_not_end_its_silence():
    state = enrolled(home(thresholds={"device_offline_after": "3600s"}))
    heartbeat = SensorKind.SENSOR_KIND_HEARTBEAT
    others = ("fall-01", "door-01", "thermo-01")
    state, _ = feed(state, *[report(heartbeat, at("08:00"), device_id=d) for d in others])
    state, _ = feed(state, report(heartbeat, at("08:00"), device_id="motion-01"))
    state, _ = feed(state, *[report(heartbeat, at("09:00"), device_id=d) for d in others])
    state, outcomes = tick(state, at("09:00"))
    [offline] = [i for i in raised(outcomes) if i.device_id == "motion-01"]
    # A report from 7:59, held by the hub and delivered at 9:40: the device is still silent.
    state, stale = feed(
        state, report(heartbeat, at("07:59"), device_id="motion-01"), now=at("09:40")
    )
    assert [r for r in resolved(stale) if r.incident_id == offline.incident_id] == []
    assert state.incidents[offline.incident_id].is_open
    # A report from after the silence began ends it.
    _, back = feed(state, report(heartbeat, at("09:41"), device_id="motion-01"))
    assert [r.incident_id for r in resolved(back)] == [offline.incident_id]


def test_a_low_battery_asks_the_provider():
    battery = SensorKind.SENSOR_KIND_BATTERY
    state, outcomes = feed(
        enrolled(), report(battery, at("10:00"), device_id="fall-01", battery_percent=9)
    )
    [low] = raised(outcomes)
    assert (low.kind, low.notified.contact_id) == (IncidentKind.INCIDENT_KIND_LOW_BATTERY, PROVIDER)
    assert state.devices["fall-01"].battery_percent == 9


def test_a_battery_still_low_after_the_provider_resolved_is_not_raised_again_each_hour():
    battery = SensorKind.SENSOR_KIND_BATTERY
    state, raised_so_far = enrolled(), []
    for hour in range(10, 16):
        low = report(battery, at(f"{hour}:00"), device_id="fall-01", battery_percent=10)
        state, outcomes = feed(state, low)
        raised_so_far += raised(outcomes)
        for incident in [i for i in state.incidents.values() if i.is_open]:
            resolve = action(
                action=IncidentAction.INCIDENT_ACTION_RESOLVE,
                incident_id=incident.incident_id,
                contact_id=PROVIDER,
                outcome=IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME,
            )
            state = apply_action(resolve, state=state, now=at(f"{hour}:05")).state
    assert len(raised_so_far) == 1
    # Changed, then low again: a new episode.
    state, _ = feed(state, report(battery, at("17:00"), device_id="fall-01", battery_percent=95))
    state, outcomes = feed(
        state, report(battery, at("18:00", day=40), device_id="fall-01", battery_percent=12)
    )
    assert [i.kind for i in raised(outcomes)] == [IncidentKind.INCIDENT_KIND_LOW_BATTERY]


def test_a_battery_reading_older_than_the_latest_is_ignored():
    battery = SensorKind.SENSOR_KIND_BATTERY
    state, first = feed(
        enrolled(), report(battery, at("10:00"), device_id="fall-01", battery_percent=9)
    )
    [low] = raised(first)
    state, changed = feed(
        state, report(battery, at("11:00"), device_id="fall-01", battery_percent=80)
    )
    assert [r.incident_id for r in resolved(changed)] == [low.incident_id]
    state, late = feed(
        state,
        report(battery, at("10:30"), device_id="fall-01", battery_percent=8),
        now=at("11:05"),
    )
    assert raised(late) == []
    assert state.devices["fall-01"].battery_percent == 80


def test_falls_are_counted_over_the_last_30_days():
    state = enrolled()
    counts = []
    for day in (-40, -20, -5, 0):
        state, outcomes = feed(state, fall(at("10:00", day=day)))
        [incident] = raised(outcomes)
        counts.append(incident.falls_in_last_30_days)
    # The fall 40 days ago is out of the window of the later ones.
    assert counts == [1, 2, 2, 3]


def test_two_detectors_reporting_one_fall_raise_one_incident():
    state, outcomes = feed(enrolled(), fall(at("10:00")), fall(at("10:00") + timedelta(seconds=30)))
    [incident] = raised(outcomes)
    assert len(state.incidents[incident.incident_id].sensor_event_ids) == 2
    assert [o.outcome for o in outcomes] == ["incident", "joined"]
