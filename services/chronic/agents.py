"""Chronic agents: thin loops from input topics to handlers and out to the bus.

One agent writes a patient's monitoring state: readings, lab reviews and alert actions
(care team and timers) arrive on one channel and are handled one at a time, so no two
changes to a patient's alerts interleave. Care plans have their own agent and table.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import faust
import structlog
from faust.types import TableT
from prometheus_client import Counter, Histogram

from emeuse.chronic.v1.chronic_events_pb2 import AlertAcknowledged, AlertEscalated, AlertRaised
from emeuse.registry import (
    ALERT_ACTION_REQUESTED,
    CARE_PLAN_UPDATED,
    POINT_OF_CARE_REVIEWED,
    READING_RECORDED,
)
from emeuse.runtime.bus import Event
from emeuse.runtime.envelope import CODE_OF_TERRITORY, territory_from_code
from emeuse.runtime.parsed import ParsedValues
from emeuse.runtime.service import Runtime
from emeuse.runtime.timers import AskedSteps
from services.chronic import handlers
from services.chronic.alerts import Outcome, apply_action, due_actions
from services.chronic.care_plan import (
    applied_events,
    is_redelivery,
    plan_in_force,
    record_care_plan,
)
from services.chronic.domain.monitoring import PatientState
from services.chronic.domain.plan import PlanInForce

log = structlog.get_logger("emeuse.chronic")
READINGS = Counter(
    "emeuse_chronic_readings_total",
    "Readings checked, by measure and outcome.",
    ["loinc", "outcome"],
)
ALERTS_RAISED = Counter(
    "emeuse_chronic_alerts_raised_total",
    "Alerts raised, by severity and rule.",
    ["severity", "rule"],
)
ALERT_ACTIONS = Counter(
    "emeuse_chronic_alert_actions_total",
    "Alert actions and timer steps handled, by outcome.",
    ["outcome"],
)
ESCALATIONS = Counter(
    "emeuse_chronic_alert_escalations_total",
    "Unacknowledged alerts passed to the next care-team member, by step.",
    ["step"],
)
MONITORING_GAPS = Counter(
    "emeuse_chronic_monitoring_gaps_total",
    "Monitoring-gap alerts: a measure's readings stopped coming, by measure.",
    ["loinc"],
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "emeuse_chronic_alert_time_to_acknowledge_seconds",
    "Time from an alert to its acknowledgement by the care team.",
    buckets=(30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)
POINT_OF_CARE_TO_ALERT = Histogram(
    "emeuse_chronic_point_of_care_to_alert_seconds",
    "Point-of-care results (e.g. capillary INR): time from measurement to the prescriber alert.",
    ["loinc"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400),
)
TIMER_ERRORS = Counter(
    "emeuse_chronic_timer_errors_total",
    "Timer steps that could not be asked for (retried next round), by error type.",
    ["error"],
)
# Seconds between timer scans, and before a due step not yet applied is asked again.
TIMER_INTERVAL_S = 1.0
REASK_AFTER_S = 10.0


def _territory(event: Event) -> str:
    return CODE_OF_TERRITORY.get(event.envelope.territory, "")


def start_agents(rt: Runtime, care_plans: TableT, states: TableT) -> None:
    # Plans and states parsed once per change: the timer reads every patient each second.
    plans_in_force = ParsedValues(plan_in_force)
    patient_states = ParsedValues(PatientState.from_json)

    async def publish(patient: str, outcome: Outcome, event: Event) -> None:
        for fact in outcome.facts:
            await rt.bus.publish(
                fact.spec,
                fact.message,
                key=patient,
                subject_pseudonym=patient,
                occurred_at=datetime.now(UTC),
                cause=event.envelope,
                event_id=fact.event_id,
            )
            _count(fact.message)
            # "alert.raised", "alert.escalated"...: the fact's name, and ids only.
            fact_name = fact.spec.name.split(".")[2].replace("-", ".")
            log.info(fact_name, alert_id=getattr(fact.message, "alert_id", ""))
            if isinstance(fact.message, AlertRaised) and outcome.point_of_care_to_alert:
                POINT_OF_CARE_TO_ALERT.labels(fact.message.loinc_code).observe(
                    outcome.point_of_care_to_alert.total_seconds()
                )
        stored = outcome.state.to_json()
        states[patient] = stored
        # The next event or timer round for the patient starts from it, unparsed.
        patient_states.remember(patient, stored, outcome.state)

    async def apply_care_plan(event: Event) -> None:
        plan = event.message
        patient = plan.patient_pseudonym
        previous = care_plans.get(patient)
        if is_redelivery(plan, previous, event.envelope.event_id):
            log.info("care_plan.duplicate", care_plan_id=plan.care_plan_id)
            return
        stored = record_care_plan(
            plan, previous=previous, territory=_territory(event), recorded_at=datetime.now(UTC)
        )
        stored["applied"] = applied_events(previous, event.envelope.event_id)
        care_plans[patient] = stored
        log.info("care_plan.recorded", care_plan_id=plan.care_plan_id, version=stored["version"])

    def context(patient: str) -> tuple[PlanInForce | None, PatientState]:
        """The patient's plan and state, shared: handlers change a copy (`changed()`)."""
        return (
            plans_in_force.get(patient, care_plans.get(patient)),
            patient_states.get(patient, states.get(patient)),
        )

    async def evaluate_reading(event: Event) -> None:
        reading = event.message
        patient = reading.patient_pseudonym
        plan, state = context(patient)
        outcome = handlers.evaluate_reading(
            reading,
            plan=plan,
            state=state,
            now=datetime.now(UTC),
            territory=_territory(event),
        )
        READINGS.labels(reading.loinc_code, outcome.outcome).inc()
        log.info("reading.checked", reading_id=reading.reading_id, outcome=outcome.outcome)
        if outcome.outcome != "duplicate":
            await publish(patient, outcome, event)

    async def review_result(event: Event) -> None:
        review = event.message
        patient = review.patient_pseudonym
        plan, state = context(patient)
        outcome = handlers.review_result(
            review,
            plan=plan,
            state=state,
            now=datetime.now(UTC),
            territory=_territory(event),
        )
        log.info("point_of_care.reviewed", reading_id=review.reading_id, outcome=outcome.outcome)
        if outcome.outcome != "duplicate":
            await publish(patient, outcome, event)

    async def act_on_alert(event: Event) -> None:
        action = event.message
        patient = action.patient_pseudonym
        plan, state = context(patient)
        outcome = apply_action(action, plan=plan, state=state, now=datetime.now(UTC))
        ALERT_ACTIONS.labels(outcome.outcome).inc()
        log.info("alert.action", action_id=action.action_id, outcome=outcome.outcome)
        if outcome.facts:
            await publish(patient, outcome, event)

    # Plans too: a reading right after an enrolment is judged against the plan.
    patient_inputs = (
        CARE_PLAN_UPDATED,
        READING_RECORDED,
        POINT_OF_CARE_REVIEWED,
        ALERT_ACTION_REQUESTED,
    )

    @rt.app.agent(rt.bus.topics(*patient_inputs), name="monitor_patients")
    async def monitor_patients(records: faust.StreamT) -> None:
        await rt.bus.process_each(
            records,
            {
                CARE_PLAN_UPDATED: apply_care_plan,
                READING_RECORDED: evaluate_reading,
                POINT_OF_CARE_REVIEWED: review_result,
                ALERT_ACTION_REQUESTED: act_on_alert,
            },
        )

    asked = AskedSteps(REASK_AFTER_S)

    async def ask_due_steps(patient: str, now: datetime, clock: float) -> None:
        plan, state = context(patient)
        if plan is None:
            return
        for action in due_actions(patient, plan, state, now):
            if asked.recently_asked(action.action_id, clock):
                continue
            asked.mark(action.action_id, clock)
            await rt.bus.publish(
                ALERT_ACTION_REQUESTED,
                action,
                key=patient,
                subject_pseudonym=patient,
                occurred_at=now,
                territory=territory_from_code(plan.territory),
                event_id=action.action_id,
            )

    @rt.app.timer(interval=TIMER_INTERVAL_S, name="chronic.fire_due_timers")
    async def fire_due_timers() -> None:
        """Ask the patient's agent for every step due now (escalation, gap)."""
        now, clock = datetime.now(UTC), time.monotonic()
        held = [
            patient
            for patient in list(care_plans.keys())
            if rt.router.holds(READING_RECORDED.name, READING_RECORDED.partitions, patient)
        ]
        plans_in_force.retain(held)
        patient_states.retain(held)
        for patient in held:
            try:
                await ask_due_steps(patient, now, clock)
            except Exception as exc:  # one patient's trouble (a broker blip) never stops the timer
                TIMER_ERRORS.labels(type(exc).__name__).inc()
                log.error("timer.failed", error=type(exc).__name__)
        asked.forget_old(clock)


def _count(message: object) -> None:
    if isinstance(message, AlertRaised):
        severity = "critical" if message.severity == 2 else "warning"
        ALERTS_RAISED.labels(severity, message.rule).inc()
        if message.rule == "monitoring.gap":
            MONITORING_GAPS.labels(message.loinc_code).inc()
    elif isinstance(message, AlertEscalated):
        ESCALATIONS.labels(str(message.step)).inc()
    elif isinstance(message, AlertAcknowledged):
        TIME_TO_ACKNOWLEDGE.observe(message.time_to_acknowledge.ToTimedelta().total_seconds())
