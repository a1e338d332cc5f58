"""Home use cases: sensor events in, incidents and home state out; no broker."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from emeuse.home.v1.home_events_pb2 import IncidentKind, SensorEventReported, SensorKind
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym
from services.home.domain.home import RECENT_SENSOR_EVENTS_KEPT, HomeState
from services.home.grpc_api import status
from services.home.handlers import record_sensor_event

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RESIDENT = random_pseudonym()


def report(
    kind: SensorKind.ValueType,
    *,
    confidence: float = 0.0,
    at: datetime = NOW,
    sensor_event_id: str | None = None,
) -> SensorEventReported:
    return SensorEventReported(
        sensor_event_id=sensor_event_id or str(uuid.uuid4()),
        resident_pseudonym=RESIDENT,
        device_id="device-1",
        kind=kind,
        confidence=confidence,
        occurred_at=timestamp(at),
    )


def test_a_confident_fall_raises_a_fall_incident_for_the_resident() -> None:
    fall = report(SensorKind.SENSOR_KIND_FALL, confidence=0.9)
    outcome = record_sensor_event(fall, state=HomeState(), now=NOW)
    assert outcome.outcome == "incident"
    assert outcome.incident is not None
    assert outcome.incident.kind == IncidentKind.INCIDENT_KIND_FALL
    assert outcome.incident.resident_pseudonym == RESIDENT
    assert list(outcome.incident.sensor_event_ids) == [fall.sensor_event_id]
    assert outcome.state.incident_ids == (outcome.incident.incident_id,)


def test_an_unsure_fall_raises_nothing_but_counts_as_activity() -> None:
    outcome = record_sensor_event(
        report(SensorKind.SENSOR_KIND_FALL, confidence=0.2), state=HomeState(), now=NOW
    )
    assert outcome.incident is None
    assert outcome.outcome == "recorded"
    assert outcome.state.sensor_events == 1
    assert outcome.state.last_activity_at == NOW


def test_a_panic_button_raises_a_panic_incident() -> None:
    outcome = record_sensor_event(
        report(SensorKind.SENSOR_KIND_PANIC_BUTTON), state=HomeState(), now=NOW
    )
    assert outcome.incident is not None
    assert outcome.incident.kind == IncidentKind.INCIDENT_KIND_PANIC


def test_the_same_sensor_event_handled_twice_raises_the_same_incident_id() -> None:
    fall = report(SensorKind.SENSOR_KIND_FALL, confidence=0.9)
    first = record_sensor_event(fall, state=HomeState(), now=NOW)
    again = record_sensor_event(fall, state=HomeState(), now=NOW + timedelta(minutes=1))
    assert first.incident is not None and again.incident is not None
    assert first.incident.incident_id == again.incident.incident_id


def test_a_duplicate_sensor_event_raises_nothing_and_is_counted_once() -> None:
    fall = report(SensorKind.SENSOR_KIND_FALL, confidence=0.9)
    first = record_sensor_event(fall, state=HomeState(), now=NOW)
    second = record_sensor_event(fall, state=first.state, now=NOW)
    assert second.outcome == "duplicate"
    assert second.incident is None
    assert second.state.sensor_events == 1
    assert len(second.state.incident_ids) == 1


def test_only_the_most_recent_sensor_event_ids_are_kept() -> None:
    state = HomeState()
    for _ in range(RECENT_SENSOR_EVENTS_KEPT + 5):
        state = record_sensor_event(
            report(SensorKind.SENSOR_KIND_HEARTBEAT), state=state, now=NOW
        ).state
    assert len(state.recent_sensor_event_ids) == RECENT_SENSOR_EVENTS_KEPT
    assert state.sensor_events == RECENT_SENSOR_EVENTS_KEPT + 5


def test_a_late_motion_event_does_not_move_last_activity_back() -> None:
    state = record_sensor_event(
        report(SensorKind.SENSOR_KIND_MOTION, at=NOW), state=HomeState(), now=NOW
    ).state
    late = record_sensor_event(
        report(SensorKind.SENSOR_KIND_MOTION, at=NOW - timedelta(hours=2)), state=state, now=NOW
    )
    assert late.state.last_activity_at == NOW
    assert late.state.sensor_events == 2


def test_a_later_door_event_moves_last_activity_forward() -> None:
    later = NOW + timedelta(minutes=5)
    state = record_sensor_event(
        report(SensorKind.SENSOR_KIND_MOTION, at=NOW), state=HomeState(), now=NOW
    ).state
    state = record_sensor_event(
        report(SensorKind.SENSOR_KIND_DOOR, at=later), state=state, now=later
    ).state
    assert state.last_activity_at == later


def test_a_heartbeat_does_not_count_as_activity() -> None:
    outcome = record_sensor_event(
        report(SensorKind.SENSOR_KIND_HEARTBEAT), state=HomeState(), now=NOW
    )
    assert outcome.state.last_activity_at is None
    assert outcome.state.sensor_events == 1


def test_a_confidence_above_one_is_refused_as_an_invalid_event() -> None:
    with pytest.raises(InvalidEventError, match="confidence"):
        record_sensor_event(
            report(SensorKind.SENSOR_KIND_FALL, confidence=1.5), state=HomeState(), now=NOW
        )


def test_the_home_state_survives_the_table_round_trip() -> None:
    state = record_sensor_event(
        report(SensorKind.SENSOR_KIND_PANIC_BUTTON), state=HomeState(), now=NOW
    ).state
    assert HomeState.from_json(state.to_json()) == state


def test_the_status_is_built_from_the_table_json() -> None:
    state = HomeState()
    for kind in (SensorKind.SENSOR_KIND_MOTION, SensorKind.SENSOR_KIND_PANIC_BUTTON):
        state = record_sensor_event(report(kind), state=state, now=NOW).state
    response = status(RESIDENT, state.to_json())
    assert response.resident_pseudonym == RESIDENT
    assert response.sensor_events == 2
    assert list(response.incident_ids) == list(state.incident_ids)
    assert response.last_activity_at.ToDatetime(tzinfo=UTC) == NOW


def test_an_unknown_resident_gets_an_empty_status() -> None:
    response = status(RESIDENT, None)
    assert response.resident_pseudonym == RESIDENT
    assert response.sensor_events == 0
    assert list(response.incident_ids) == []
    assert not response.HasField("last_activity_at")
