"""What the chronic service handles; the kernel runs it (emeuse.kernel).

A patient's plan, readings, lab reviews and alert actions share the patient's partition, so
they are handled one at a time, in order, each exactly once: no two changes to a patient's
alerts interleave. Escalations, review deadlines and monitoring gaps are timers: the next
deadline of each patient is kept in a due-index and handled in a transaction when it comes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import structlog

from emeuse.chronic.v1.chronic_events_pb2 import AlertEscalated, AlertRaised
from emeuse.kernel.declare import CodecOf, JsonCodec, Lookup, Processor, TableSpec, Timer
from emeuse.kernel.tx import Tx
from emeuse.registry import (
    ALERT_ACTION_REQUESTED,
    CARE_PLAN_UPDATED,
    POINT_OF_CARE_REVIEWED,
    READING_CORRECTED,
    READING_RECORDED,
)
from emeuse.runtime.envelope import CODE_OF_TERRITORY, territory_from_code
from emeuse.runtime.events import Event
from emeuse.runtime.metrics import labelled
from services.chronic import handlers
from services.chronic.alerts import Outcome, apply_action, due_actions, gap_due_at
from services.chronic.care_plan import (
    applied_events,
    is_redelivery,
    plan_in_force,
    record_care_plan,
)
from services.chronic.domain.monitoring import (
    GAP,
    OPEN,
    PatientState,
    decode_state,
    encode_state,
)
from services.chronic.domain.plan import PlanInForce
from services.chronic.metrics import (
    ALERT_ACTIONS,
    ALERTS_AT_LAST_MEMBER,
    NOT_MONITORED,
    POINT_OF_CARE_TO_ALERT,
    READINGS,
    count,
)

log = structlog.get_logger("emeuse.chronic")
CARE_PLANS = "patient_to_care_plan"
STATES = "patient_to_state"


def context(tx: Tx, patient: str) -> tuple[PlanInForce | None, PatientState]:
    return (
        plan_in_force(tx.get(CARE_PLANS, patient)),
        PatientState.of(tx.get(STATES, patient)),
    )


def _territory(event: Event) -> str:
    return CODE_OF_TERRITORY.get(event.envelope.territory, "")


def publish(
    tx: Tx,
    patient: str,
    outcome: Outcome,
    event: Event | None,
    territory: str,
    experiment: str = "",
) -> None:
    """The outcome's facts into the transaction, and the patient's new state. A fact with a
    cause is in its cause's territory and experiment; a timer's, in the plan's."""
    for fact in outcome.facts:
        tx.publish(
            fact.spec,
            fact.message,
            key=patient,
            subject_pseudonym=patient,
            occurred_at=tx.now,
            cause=event.envelope if event else None,
            territory=None if event else territory_from_code(territory),
            experiment_id=None if event else (experiment or None),
            event_id=fact.event_id,
        )
        tx.on_commit.append(partial(count, fact.message))
        if isinstance(fact.message, AlertEscalated):
            count_last_member(tx, outcome.state, fact.message.alert_id)
        # "alert.raised", "alert.escalated"...: the fact's name, and ids only.
        fact_name = fact.spec.name.split(".")[2].replace("-", ".")
        log.info(fact_name, alert_id=getattr(fact.message, "alert_id", ""))
        if isinstance(fact.message, AlertRaised) and outcome.point_of_care_to_alert:
            tx.observe(
                POINT_OF_CARE_TO_ALERT.labels(fact.message.loinc_code),
                outcome.point_of_care_to_alert.total_seconds(),
            )
    tx.put(STATES, patient, outcome.state)


def count_last_member(tx: Tx, state: PatientState, alert_id: str) -> None:
    """An escalation that reached the end of the chain, the alert still open: counted, for
    the operators' alert (a person may be in danger and only one member is left)."""
    alert = state.alerts.get(alert_id)
    if alert is not None and alert.status == OPEN and alert.next_escalation_at is None:
        tx.count(ALERTS_AT_LAST_MEMBER.labels(alert.severity, alert.territory))


def note_not_monitored(tx: Tx, outcome: Outcome, reading_id: str, loinc: str) -> None:
    """A reading the plan does not monitor is kept, counted and logged, never dropped quietly."""
    if outcome.outcome == "not_monitored":
        tx.count(NOT_MONITORED.labels(loinc))
        log.info("reading.not_monitored", reading_id=reading_id, loinc_code=loinc)


async def apply_care_plan(event: Event, tx: Tx) -> None:
    plan = event.message
    patient = plan.patient_pseudonym
    previous = tx.get(CARE_PLANS, patient)
    if is_redelivery(plan, previous, event.envelope.event_id):
        log.info("care_plan.duplicate", care_plan_id=plan.care_plan_id)
        return
    stored = record_care_plan(
        plan,
        previous=previous,
        territory=_territory(event),
        recorded_at=datetime.now(UTC),
        experiment=event.envelope.experiment_id,
    )
    stored["applied"] = applied_events(previous, event.envelope.event_id)
    tx.put(CARE_PLANS, patient, stored)
    log.info("care_plan.recorded", care_plan_id=plan.care_plan_id, version=stored["version"])


async def evaluate_reading(event: Event, tx: Tx) -> None:
    reading = event.message
    patient = reading.patient_pseudonym
    plan, state = context(tx, patient)
    outcome = handlers.evaluate_reading(
        reading, plan=plan, state=state, now=tx.now, territory=_territory(event)
    )
    tx.count(labelled(READINGS, reading.loinc_code, outcome.outcome))
    note_not_monitored(tx, outcome, reading.reading_id, reading.loinc_code)
    # Debug: at thousands of readings a second, one line each would drown the facts.
    log.debug("reading.checked", reading_id=reading.reading_id, outcome=outcome.outcome)
    if outcome.outcome != "duplicate":
        publish(tx, patient, outcome, event, _territory(event))


async def correct_reading(event: Event, tx: Tx) -> None:
    correction = event.message
    patient = correction.patient_pseudonym
    plan, state = context(tx, patient)
    outcome = handlers.correct_reading(
        correction, plan=plan, state=state, now=tx.now, territory=_territory(event)
    )
    tx.count(labelled(READINGS, correction.loinc_code, outcome.outcome))
    note_not_monitored(tx, outcome, correction.reading_id, correction.loinc_code)
    log.info("reading.corrected", reading_id=correction.reading_id, outcome=outcome.outcome)
    if outcome.outcome != "duplicate":
        publish(tx, patient, outcome, event, _territory(event))


async def review_result(event: Event, tx: Tx) -> None:
    review = event.message
    patient = review.patient_pseudonym
    plan, state = context(tx, patient)
    outcome = handlers.review_result(
        review, plan=plan, state=state, now=tx.now, territory=_territory(event)
    )
    log.info("point_of_care.reviewed", reading_id=review.reading_id, outcome=outcome.outcome)
    pending = state.pending_review.get(review.reading_id)
    note_not_monitored(tx, outcome, review.reading_id, pending.loinc_code if pending else "")
    if outcome.outcome != "duplicate":
        publish(tx, patient, outcome, event, _territory(event))


async def act_on_alert(event: Event, tx: Tx) -> None:
    action = event.message
    patient = action.patient_pseudonym
    plan, state = context(tx, patient)
    outcome = apply_action(action, plan=plan, state=state, now=tx.now)
    tx.count(ALERT_ACTIONS.labels(outcome.outcome))
    log.info("alert.action", action_id=action.action_id, outcome=outcome.outcome)
    if outcome.facts:
        publish(tx, patient, outcome, event, _territory(event))


def next_step_at(patient: str, lookup: Lookup, now: datetime) -> datetime | None:
    """The patient's next timer step: an escalation, a review deadline or a monitoring gap."""
    plan = plan_in_force(lookup(CARE_PLANS))
    if plan is None:
        return None
    state = PatientState.of(lookup(STATES))
    moments = [
        alert.next_escalation_at
        for alert in state.alerts.values()
        if alert.status == OPEN and alert.next_escalation_at is not None
    ]
    moments += [
        pending.received_at + timedelta(seconds=plan.review_within_s)
        for pending in state.pending_review.values()
        if not pending.overdue_alerted
    ]
    moments += [
        gap_due_at(plan, state, loinc)
        for loinc in plan.bands
        if state.open_alert(loinc, GAP) is None
    ]
    return min(moments, default=None)


async def take_due_steps(patient: str, tx: Tx) -> None:
    """Apply every step due now, in one transaction with the state that records it."""
    plan, state = context(tx, patient)
    if plan is None:
        return
    for action in due_actions(patient, plan, state, tx.now):
        outcome = apply_action(action, plan=plan, state=state, now=tx.now)
        tx.count(ALERT_ACTIONS.labels(outcome.outcome))
        log.info("alert.action", action_id=action.action_id, outcome=outcome.outcome)
        if outcome.facts:
            publish(tx, patient, outcome, None, plan.territory, plan.experiment)
            state = outcome.state


PROCESSOR = Processor(
    service="chronic",
    inputs={
        # Plans too: a reading right after an enrolment is judged against the plan.
        CARE_PLAN_UPDATED: apply_care_plan,
        READING_RECORDED: evaluate_reading,
        # Its own topic: a correction is rare, and a lab's correction must never be lost.
        READING_CORRECTED: correct_reading,
        POINT_OF_CARE_REVIEWED: review_result,
        ALERT_ACTION_REQUESTED: act_on_alert,
    },
    tables=(
        TableSpec(
            CARE_PLANS,
            "Plan in force: version, bands by LOINC code, the plan (care_plan.StoredPlan).",
            # Shared: a recorded plan is replaced by a new one, never edited.
            codec=CodecOf(JsonCodec().encode, JsonCodec().decode),
        ),
        TableSpec(
            STATES,
            "Latest values, alerts, readings seen (domain.monitoring).",
            # Kept as objects: handlers build a new state (`changed()`), never edit one.
            codec=CodecOf(encode_state, decode_state),
        ),
    ),
    timers=(Timer("alert-steps", (CARE_PLANS, STATES), next_step_at, take_due_steps),),
)
