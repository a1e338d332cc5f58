"""The home and prevention services consume, produce and answer gRPC from their tables."""

from __future__ import annotations

import grpc

from emeuse.home.v1 import home_service_pb2, home_service_pb2_grpc
from emeuse.home.v1.home_events_pb2 import SensorEventReported, SensorKind
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1 import prevention_service_pb2, prevention_service_pb2_grpc
from emeuse.prevention.v1.prevention_events_pb2 import PersonEnrolled
from emeuse.registry import (
    INCIDENT_RAISED,
    MESSAGE_SCHEDULED,
    PERSON_ENROLLED,
    SENSOR_EVENT_REPORTED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import new_id, record
from tests.integration.test_home import enrol


def a_sensor_event(resident: str, kind: int, confidence: float = 0.0) -> SensorEventReported:
    event = SensorEventReported(
        sensor_event_id=new_id("sensor"),
        resident_pseudonym=resident,
        device_id="fall-01",
        kind=kind,
        confidence=confidence,
    )
    event.occurred_at.GetCurrentTime()
    return event


def test_a_fall_raises_an_incident_and_the_home_status_shows_it(platform, bus):
    resident = random_pseudonym()
    enrol(platform, resident, ack="600s")
    bus.send(
        *record(
            SENSOR_EVENT_REPORTED, a_sensor_event(resident, SensorKind.SENSOR_KIND_MOTION), resident
        )
    )
    fall = a_sensor_event(resident, SensorKind.SENSOR_KIND_FALL, confidence=0.93)
    bus.send(*record(SENSOR_EVENT_REPORTED, fall, resident))
    # The same fall reported twice raises one incident.
    bus.send(*record(SENSOR_EVENT_REPORTED, fall, resident))

    [incident] = bus.wait_for(INCIDENT_RAISED.name, lambda r: r["key"] == resident)
    assert incident["event"]["kind"] == "INCIDENT_KIND_FALL"
    assert incident["event"]["sensor_event_ids"] == [fall.sensor_event_id]

    with grpc.insecure_channel(platform.services["home"].grpc_target) as channel:
        stub = home_service_pb2_grpc.HomeServiceStub(channel)
        status = stub.GetHomeStatus(
            home_service_pb2.GetHomeStatusRequest(resident_pseudonym=resident),
            timeout=5,
            metadata=platform.auth,
        )
    assert list(status.incident_ids) == [incident["event"]["incident_id"]]
    assert status.enrolled and status.territory == "55"
    assert status.sensor_events == 2
    assert status.HasField("last_activity_at")


def test_an_enrolment_schedules_the_national_reminders_for_the_age_band(platform, bus):
    person = random_pseudonym()
    enrolled = PersonEnrolled(
        person_pseudonym=person,
        age_band_from=50,
        age_band_to=54,
        territory=Territory.TERRITORY_MEURTHE_ET_MOSELLE,
        allowed_channels=["sms", "app"],
    )
    bus.send(*record(PERSON_ENROLLED, enrolled, person))

    reminders = bus.wait_for(MESSAGE_SCHEDULED.name, lambda r: r["key"] == person, count=2)
    assert {r["event"]["programme"] for r in reminders} == {
        "screening.colorectal",
        "screening.breast",
    }
    assert {r["event"]["channel"] for r in reminders} == {"sms"}

    with grpc.insecure_channel(platform.services["prevention"].grpc_target) as channel:
        stub = prevention_service_pb2_grpc.PreventionServiceStub(channel)
        schedule = stub.GetPersonSchedule(
            prevention_service_pb2.GetPersonScheduleRequest(person_pseudonym=person),
            timeout=5,
            metadata=platform.auth,
        )
    assert schedule.enrolled
    assert {r.reminder_id for r in schedule.reminders} == {
        r["event"]["message_id"] for r in reminders
    }
