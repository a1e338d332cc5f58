"""Home use cases: plain functions, protobuf in and out, state passed in and returned."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from emeuse.home.v1.home_events_pb2 import (
    IncidentKind,
    IncidentRaised,
    SensorEventReported,
    SensorKind,
)
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import timestamp
from services.home.domain.detection import Incident, Sensor, incident_for, is_activity
from services.home.domain.home import HomeState

INCIDENT_NAMESPACE = uuid.UUID("4b8e2f61-7d3a-4e0c-8f55-a1d9c3e50055")
SENSOR = {
    SensorKind.SENSOR_KIND_FALL: Sensor.FALL,
    SensorKind.SENSOR_KIND_MOTION: Sensor.MOTION,
    SensorKind.SENSOR_KIND_DOOR: Sensor.DOOR,
    SensorKind.SENSOR_KIND_BED_EXIT: Sensor.BED_EXIT,
    SensorKind.SENSOR_KIND_PANIC_BUTTON: Sensor.PANIC_BUTTON,
    SensorKind.SENSOR_KIND_HEARTBEAT: Sensor.HEARTBEAT,
}
INCIDENT_KIND = {
    Incident.FALL: IncidentKind.INCIDENT_KIND_FALL,
    Incident.PANIC: IncidentKind.INCIDENT_KIND_PANIC,
}


@dataclass(frozen=True)
class SensorOutcome:
    """What a sensor event did: the new state, the incident to raise if any, labels for metrics."""

    state: HomeState
    incident: IncidentRaised | None
    sensor: Sensor
    outcome: str


def sensor_of(kind: SensorKind.ValueType) -> Sensor:
    # Proto3 enums are open: a kind added by a newer device maker only updates state here.
    return SENSOR.get(kind, Sensor.UNSPECIFIED)


def record_sensor_event(
    event: SensorEventReported, *, state: HomeState, now: datetime
) -> SensorOutcome:
    """Count one sensor event in the resident's home and raise the incident it calls for."""
    sensor = sensor_of(event.kind)
    if state.has_seen(event.sensor_event_id):
        return SensorOutcome(state, None, sensor, "duplicate")
    try:
        incident = incident_for(sensor, event.confidence)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None
    occurred_at = event.occurred_at.ToDatetime(tzinfo=now.tzinfo)
    new_state = state.with_sensor_event(
        event.sensor_event_id, activity_at=occurred_at if is_activity(sensor) else None
    )
    if incident is None:
        return SensorOutcome(new_state, None, sensor, "recorded")
    # Derived from the sensor event, so a record handled twice raises the same incident id.
    incident_id = str(uuid.uuid5(INCIDENT_NAMESPACE, event.sensor_event_id))
    raised = IncidentRaised(
        incident_id=incident_id,
        resident_pseudonym=event.resident_pseudonym,
        kind=INCIDENT_KIND[incident],
        sensor_event_ids=[event.sensor_event_id],
        raised_at=timestamp(now),
    )
    return SensorOutcome(new_state.with_incident(incident_id), raised, sensor, "incident")
