"""A home the tests enrol, and the reports its devices send.

A resident of Bar-le-Duc (Meuse) who gets up at 7:00 and goes to bed at 22:00; her
daughter is told first (10 minutes to answer), then a neighbour (10 minutes), then,
for a fall or a panic, the SAMU of the Meuse. Times are local (Europe/Paris, winter).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from google.protobuf import json_format

from emeuse.home.v1.home_events_pb2 import (
    DoorState,
    HomeConfigured,
    IncidentActionRequested,
    SensorEventReported,
    SensorKind,
)
from emeuse.registry import INCIDENT_ESCALATED, INCIDENT_RAISED, INCIDENT_RESOLVED, TopicSpec
from emeuse.runtime.envelope import timestamp
from services.home.configuration import record_home
from services.home.domain.home import HomeState
from services.home.domain.rhythm import LOCAL
from services.home.handlers import record_sensor_event
from services.home.incidents import Outcome, apply_action, due_actions
from tests.unit.chronic.plans import pseudonym

RESIDENT = pseudonym("resident-1")
DAUGHTER, NEIGHBOUR, PROVIDER, AIDES = (
    "family-0001",
    "neighbour-0002",
    "provider-0042",
    "ssiad-0055",
)
SAMU = "samu-55"
# Thursday 15 January 2026, before she gets up.
DAY = datetime(2026, 1, 15, tzinfo=LOCAL)
ENROLLED_AT = DAY - timedelta(days=1)
_ids = itertools.count(1)


def at(hh_mm: str, day: int = 0) -> datetime:
    hours, minutes = (int(part) for part in hh_mm.split(":"))
    return DAY + timedelta(days=day, hours=hours, minutes=minutes)


def home(**overrides: object) -> HomeConfigured:
    data = {
        "resident_pseudonym": RESIDENT,
        "gir_level": 4,
        "devices": [
            {"device_id": "fall-01", "kind": "DEVICE_KIND_FALL_DETECTOR"},
            {"device_id": "motion-01", "kind": "DEVICE_KIND_MOTION_SENSOR"},
            {"device_id": "door-01", "kind": "DEVICE_KIND_DOOR_SENSOR"},
            {"device_id": "thermo-01", "kind": "DEVICE_KIND_THERMOMETER"},
        ],
        "contacts": [
            {
                "contact_id": DAUGHTER,
                "role": "CONTACT_ROLE_FAMILY_CAREGIVER",
                "acknowledge_within": "600s",
            },
            {
                "contact_id": NEIGHBOUR,
                "role": "CONTACT_ROLE_NEIGHBOUR",
                "acknowledge_within": "600s",
            },
        ],
        "device_provider": {
            "contact_id": PROVIDER,
            "role": "CONTACT_ROLE_DEVICE_PROVIDER",
            "acknowledge_within": "3600s",
        },
        "aide_service": {
            "contact_id": AIDES,
            "role": "CONTACT_ROLE_HOME_AIDE_SERVICE",
            "acknowledge_within": "900s",
        },
        "rhythm": {
            "wakes_at": "07:00",
            "goes_to_bed_at": "22:00",
            "inactivity_alert_after": "7200s",
        },
        "thresholds": {"device_offline_after": "604800s"},
    }
    data |= overrides
    return json_format.ParseDict(data, HomeConfigured())


def enrolled(configuration: HomeConfigured | None = None) -> HomeState:
    return record_home(configuration or home(), state=HomeState(), territory="55", now=ENROLLED_AT)


def report(
    kind: SensorKind.ValueType,
    when: datetime,
    *,
    device_id: str = "motion-01",
    sensor_event_id: str | None = None,
    **fields: object,
) -> SensorEventReported:
    event = SensorEventReported(
        sensor_event_id=sensor_event_id or f"se-{next(_ids)}",
        resident_pseudonym=RESIDENT,
        device_id=device_id,
        kind=kind,
        occurred_at=timestamp(when),
    )
    for name, value in fields.items():
        setattr(event, name, value)
    return event


def motion(when: datetime) -> SensorEventReported:
    return report(SensorKind.SENSOR_KIND_MOTION, when)


def door(
    when: datetime, state: DoorState.ValueType = DoorState.DOOR_STATE_OPENED
) -> SensorEventReported:
    return report(SensorKind.SENSOR_KIND_DOOR, when, device_id="door-01", door_state=state)


def fall(when: datetime, confidence: float = 0.92) -> SensorEventReported:
    return report(SensorKind.SENSOR_KIND_FALL, when, device_id="fall-01", confidence=confidence)


def temperature(when: datetime, celsius: float) -> SensorEventReported:
    return report(
        SensorKind.SENSOR_KIND_ROOM_TEMPERATURE,
        when,
        device_id="thermo-01",
        temperature_celsius=celsius,
    )


def feed(
    state: HomeState, *events: SensorEventReported, now: datetime | None = None
) -> tuple[HomeState, list[Outcome]]:
    """Each event recorded as it arrives: at the time it happened, unless `now` is given."""
    outcomes = []
    for event in events:
        arrival = now or event.occurred_at.ToDatetime(tzinfo=UTC)
        outcome = record_sensor_event(event, state=state, now=arrival)
        state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def tick(state: HomeState, now: datetime) -> tuple[HomeState, list[Outcome]]:
    """What the home's timer takes at `now`."""
    outcomes = []
    for action in due_actions(RESIDENT, state, now):
        outcome = apply_action(action, state=state, now=now)
        state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def run(
    state: HomeState, start: datetime, end: datetime, every: timedelta = timedelta(minutes=1)
) -> tuple[HomeState, list[Outcome]]:
    """The timer ticking every minute from `start` to `end` (inclusive)."""
    outcomes: list[Outcome] = []
    now = start
    while now <= end:
        state, more = tick(state, now)
        outcomes += more
        now += every
    return state, outcomes


def published(outcomes: list[Outcome], spec: TopicSpec) -> list:  # type: ignore[type-arg]
    return [fact.message for o in outcomes for fact in o.facts if fact.spec is spec]


def raised(outcomes: list[Outcome]) -> list:  # type: ignore[type-arg]
    return published(outcomes, INCIDENT_RAISED)


def escalated(outcomes: list[Outcome]) -> list:  # type: ignore[type-arg]
    return published(outcomes, INCIDENT_ESCALATED)


def resolved(outcomes: list[Outcome]) -> list:  # type: ignore[type-arg]
    return published(outcomes, INCIDENT_RESOLVED)


def action(**fields: object) -> IncidentActionRequested:
    request = IncidentActionRequested(action_id=f"act-{next(_ids)}", resident_pseudonym=RESIDENT)
    for name, value in fields.items():
        setattr(request, name, value)
    request.requested_at.FromDatetime(DAY)
    return request
