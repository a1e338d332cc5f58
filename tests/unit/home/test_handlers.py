"""Home use cases: enrolment, sensor events in (late, duplicate, broken), state out."""

from datetime import timedelta

import pytest

from emeuse.home.v1.home_events_pb2 import DoorState, IncidentKind, SensorKind
from emeuse.runtime.codec import InvalidEventError
from services.home.configuration import check_home, record_home
from services.home.domain.home import RECENT_IDS_KEPT, HomeState
from services.home.grpc_api import status
from services.home.handlers import record_sensor_event
from tests.unit.home.homes import (
    RESIDENT,
    at,
    enrolled,
    fall,
    feed,
    home,
    motion,
    raised,
    report,
)


def test_a_sensor_event_for_a_home_not_enrolled_is_refused():
    with pytest.raises(InvalidEventError, match="not enrolled"):
        record_sensor_event(fall(at("10:00")), state=HomeState(), now=at("10:00"))


def test_enrolment_is_version_1_and_each_change_one_more():
    state = enrolled()
    assert state.config is not None and state.config.version == 1
    changed = record_home(home(gir_level=3), state=state, territory="55", now=at("10:00"))
    assert changed.config is not None
    assert (changed.config.version, changed.config.gir_level) == (2, 3)
    assert changed.config.enrolled_at == state.config.enrolled_at


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gir_level": 0}, "gir_level"),
        ({"contacts": []}, "no contact"),
        ({"rhythm": {"wakes_at": "7h"}}, "HH:MM"),
        (
            {"contacts": [{"contact_id": "Marie Dupont", "role": 1, "acknowledge_within": "60s"}]},
            "is not an id",
        ),
        ({"contacts": [{"contact_id": "family-0001", "role": 1}]}, "acknowledge_within"),
        (
            {"contacts": [{"contact_id": "samu-0055", "role": 7, "acknowledge_within": "60s"}]},
            r"contact 1 cannot be the emergency service: the SAMU \(15\) is added by the service",
        ),
        (
            {"contacts": [{"contact_id": "family-0001", "acknowledge_within": "60s"}]},
            r"contact 1 needs a role \(family",
        ),
        ({"thresholds": {"too_cold_below_celsius": 30}}, "too_cold_below"),
    ],
)
def test_a_configuration_that_cannot_work_is_refused_with_the_reason(change, message):
    with pytest.raises(InvalidEventError, match=message):
        check_home(home(**change))


def test_the_same_sensor_event_twice_counts_once_and_raises_one_incident():
    event = fall(at("10:00"))
    state, outcomes = feed(enrolled(), event, event)
    assert [o.outcome for o in outcomes] == ["incident", "duplicate"]
    assert state.sensor_events == 1
    assert len(raised(outcomes)) == 1


def test_the_same_report_resent_under_a_new_id_counts_once():
    first = fall(at("10:00"))
    again = fall(at("10:00"))
    again.CopyFrom(first)
    again.sensor_event_id = "se-resent-2"
    _, outcomes = feed(enrolled(), first, again)
    assert [o.outcome for o in outcomes] == ["incident", "duplicate"]


def test_the_same_fall_handled_twice_from_the_same_state_raises_the_same_incident_id():
    event, state = fall(at("10:00")), enrolled()
    first = record_sensor_event(event, state=state, now=at("10:00"))
    again = record_sensor_event(event, state=state, now=at("10:01"))
    assert raised([first])[0].incident_id == raised([again])[0].incident_id


def test_an_unsure_fall_raises_nothing_but_is_activity():
    state, outcomes = feed(enrolled(), fall(at("10:00"), confidence=0.2))
    assert raised(outcomes) == []
    assert state.last_activity_at == at("10:00")


def test_a_late_motion_does_not_move_last_activity_back():
    state, _ = feed(enrolled(), motion(at("10:00")))
    state, _ = feed(state, motion(at("08:00")), now=at("10:05"))
    assert state.last_activity_at == at("10:00")
    assert state.sensor_events == 2


def test_a_fall_reported_late_is_still_an_incident_dated_when_it_happened():
    _, outcomes = feed(enrolled(), fall(at("04:10")), now=at("06:30"))
    [incident] = raised(outcomes)
    assert incident.occurred_at.ToDatetime().replace(tzinfo=at("04:10").tzinfo) != at("06:30")
    assert incident.occurred_at.seconds == int(at("04:10").timestamp())


def test_a_report_from_the_future_is_refused():
    with pytest.raises(InvalidEventError, match="future"):
        record_sensor_event(
            motion(at("10:00") + timedelta(hours=1)), state=enrolled(), now=at("10:00")
        )


@pytest.mark.parametrize(
    "event",
    [
        report(SensorKind.SENSOR_KIND_FALL, at("10:00"), confidence=1.4),
        report(SensorKind.SENSOR_KIND_ROOM_TEMPERATURE, at("10:00"), temperature_celsius=95),
        report(SensorKind.SENSOR_KIND_BATTERY, at("10:00"), battery_percent=140),
    ],
)
def test_impossible_values_are_refused(event):
    with pytest.raises(InvalidEventError):
        record_sensor_event(event, state=enrolled(), now=at("10:00"))


def test_only_the_most_recent_ids_are_kept():
    state = enrolled()
    beats = [
        report(SensorKind.SENSOR_KIND_HEARTBEAT, at("10:00") + timedelta(seconds=i))
        for i in range(RECENT_IDS_KEPT)
    ]
    state, _ = feed(state, *beats, now=at("11:00"))
    assert len(state.seen) == RECENT_IDS_KEPT
    assert state.sensor_events == RECENT_IDS_KEPT


def test_the_status_shows_devices_last_activity_and_open_incidents():
    state, outcomes = feed(enrolled(), motion(at("09:00")), fall(at("10:00")))
    [incident] = raised(outcomes)
    shown = status(RESIDENT, state.to_json(), at("10:01"))
    assert shown.enrolled and shown.territory == "55"
    assert shown.configuration.version == 1
    assert [i.incident_id for i in shown.open_incidents] == [incident.incident_id]
    assert shown.open_incidents[0].kind == IncidentKind.INCIDENT_KIND_FALL
    devices = {d.device_id: d for d in shown.devices}
    assert set(devices) == {"fall-01", "motion-01", "door-01", "thermo-01"}
    assert devices["fall-01"].last_seen_at.seconds == int(at("10:00").timestamp())
    assert shown.last_activity_at.seconds == int(at("10:00").timestamp())


def test_a_resident_never_heard_of_gets_an_empty_status():
    shown = status(RESIDENT, None, at("10:00"))
    assert not shown.enrolled and not shown.open_incidents


def test_two_devices_using_the_same_event_id_are_two_reports():
    door_event = report(SensorKind.SENSOR_KIND_DOOR, at("10:00"), device_id="door-01")
    door_event.door_state = DoorState.DOOR_STATE_OPENED
    moved = report(SensorKind.SENSOR_KIND_MOTION, at("10:01"), device_id="motion-01")
    moved.sensor_event_id = door_event.sensor_event_id  # each maker numbers its own events
    state, outcomes = feed(enrolled(), door_event, moved)
    assert [o.outcome for o in outcomes] == ["recorded", "recorded"]
    assert state.sensor_events == 2


def test_a_door_opened_and_closed_in_the_same_second_is_two_reports():
    opened = report(SensorKind.SENSOR_KIND_DOOR, at("10:00"), device_id="door-01")
    opened.door_state = DoorState.DOOR_STATE_OPENED
    closed = report(SensorKind.SENSOR_KIND_DOOR, at("10:00"), device_id="door-01")
    closed.door_state = DoorState.DOOR_STATE_CLOSED
    _state, outcomes = feed(enrolled(), opened, closed)
    assert [o.outcome for o in outcomes] == ["recorded", "recorded"]


def test_a_device_not_installed_in_the_home_is_refused():
    stranger = report(SensorKind.SENSOR_KIND_PANIC_BUTTON, at("10:00"), device_id="hub-01")
    with pytest.raises(InvalidEventError, match="not installed"):
        record_sensor_event(stranger, state=enrolled(), now=at("10:00"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sensor_event_id", "chute de Mme Martin"),
        ("sensor_event_id", "Martin"),
        ("sensor_event_id", ""),
        ("device_id", "bracelet de Mme Martin"),
    ],
)
def test_ids_that_are_free_text_are_refused_without_being_repeated(field, value):
    event = fall(at("10:00"))
    setattr(event, field, value)
    with pytest.raises(InvalidEventError, match="not an id") as refused:
        record_sensor_event(event, state=enrolled(), now=at("10:00"))
    assert not value or value not in str(refused.value)
