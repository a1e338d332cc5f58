"""Chronic agents: thin loops from input topics to handlers and out to the bus."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
import structlog
from faust.types import TableT
from prometheus_client import Counter

from emeuse.registry import ALERT_RAISED, CARE_PLAN_UPDATED, READING_RECORDED
from emeuse.runtime.bus import Event
from emeuse.runtime.service import Runtime
from services.chronic import handlers
from services.chronic.care_plan import bands_of, record_care_plan
from services.chronic.domain.monitoring import PatientState

log = structlog.get_logger("emeuse.chronic")
READINGS = Counter(
    "emeuse_chronic_readings_total",
    "Readings checked, by measure and outcome.",
    ["loinc", "outcome"],
)


def start_agents(rt: Runtime, care_plans: TableT, states: TableT) -> None:
    async def apply_care_plan(event: Event) -> None:
        patient = event.message.patient_pseudonym
        stored = record_care_plan(event.message, previous=care_plans.get(patient))
        care_plans[patient] = stored
        log.info(
            "care_plan.recorded", care_plan_id=event.message.care_plan_id, version=stored["version"]
        )

    async def evaluate_reading(event: Event) -> None:
        reading = event.message
        outcome = handlers.evaluate_reading(
            reading,
            plan=bands_of(care_plans.get(reading.patient_pseudonym)),
            state=PatientState.from_json(states[reading.patient_pseudonym]),
            now=datetime.now(UTC),
        )
        READINGS.labels(reading.loinc_code, outcome.outcome).inc()
        if outcome.outcome == "duplicate":
            log.info("reading.duplicate", reading_id=reading.reading_id)
            return
        if outcome.outcome == "not_monitored":
            # Recorded, but no care-plan band applies (no plan yet, or not this measure).
            log.info("reading.not_monitored", reading_id=reading.reading_id)
        if outcome.alert is not None:
            await rt.bus.publish(
                ALERT_RAISED,
                outcome.alert,
                key=reading.patient_pseudonym,
                subject_pseudonym=reading.patient_pseudonym,
                occurred_at=datetime.now(UTC),
                cause=event.envelope,
                event_id=outcome.alert.alert_id,
            )
            log.info("alert.raised", alert_id=outcome.alert.alert_id, severity=outcome.outcome)
        states[reading.patient_pseudonym] = outcome.state.to_json()

    @rt.app.agent(rt.bus.topic(CARE_PLAN_UPDATED), name="record_care_plans")
    async def record_care_plans(records: faust.StreamT) -> None:
        await rt.bus.process(records, CARE_PLAN_UPDATED, apply_care_plan)

    @rt.app.agent(rt.bus.topic(READING_RECORDED), name="evaluate_readings")
    async def evaluate_readings(records: faust.StreamT) -> None:
        await rt.bus.process(records, READING_RECORDED, evaluate_reading)
