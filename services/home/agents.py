"""Home agents: thin loops from the sensor topic to handlers and out to the bus."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
import structlog
from faust.types import TableT
from prometheus_client import Counter

from emeuse.registry import INCIDENT_RAISED, SENSOR_EVENT_REPORTED
from emeuse.runtime.bus import Event
from emeuse.runtime.service import Runtime
from services.home import handlers
from services.home.domain.home import HomeState

log = structlog.get_logger("emeuse.home")
SENSOR_EVENTS = Counter(
    "emeuse_home_sensor_events_total",
    "Sensor events handled, by kind and outcome.",
    ["kind", "outcome"],
)


def start_agents(rt: Runtime, homes: TableT) -> None:
    async def record_sensor_event(event: Event) -> None:
        report = event.message
        resident = report.resident_pseudonym
        outcome = handlers.record_sensor_event(
            report, state=HomeState.from_json(homes[resident]), now=datetime.now(UTC)
        )
        SENSOR_EVENTS.labels(outcome.sensor.value, outcome.outcome).inc()
        if outcome.outcome == "duplicate":
            log.info("sensor_event.duplicate", sensor_event_id=report.sensor_event_id)
            return
        if outcome.incident is not None:
            await rt.bus.publish(
                INCIDENT_RAISED,
                outcome.incident,
                key=resident,
                subject_pseudonym=resident,
                occurred_at=datetime.now(UTC),
                cause=event.envelope,
                event_id=outcome.incident.incident_id,
            )
            log.info(
                "incident.raised",
                incident_id=outcome.incident.incident_id,
                sensor=outcome.sensor.value,
            )
        homes[resident] = outcome.state.to_json()

    @rt.app.agent(rt.bus.topic(SENSOR_EVENT_REPORTED), name="record_sensor_events")
    async def record_sensor_events(records: faust.StreamT) -> None:
        await rt.bus.process(records, SENSOR_EVENT_REPORTED, record_sensor_event)
