"""Readings, lab reviews and care-team actions as the chronic service receives them, and
what it publishes in return."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from google.protobuf.message import Message

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertAction,
    AlertActionRequested,
    AlertResolution,
    PointOfCareResultReviewed,
    ReadingCorrected,
    ReadingRecorded,
    ReviewDecision,
)
from emeuse.registry import TopicSpec
from emeuse.runtime.envelope import timestamp
from services.chronic.alerts import Outcome
from services.chronic.domain.monitoring import PatientState
from services.chronic.domain.plan import PlanInForce
from services.chronic.handlers import correct_reading, evaluate_reading, review_result
from tests.unit.chronic.plans import GLUCOSE, INR, LAB, NOW, PATIENT, TERRITORY, WEIGHT

UNITS = {INR: "{INR}", GLUCOSE: "mg/dL", WEIGHT: "kg"}


def reading(
    loinc: str,
    value: float,
    reading_id: str,
    measured_at: datetime,
    *,
    unit: str = "",
    device_id: str = "",
    point_of_care: bool = False,
    patient: str = PATIENT,
) -> ReadingRecorded:
    return ReadingRecorded(
        reading_id=reading_id,
        patient_pseudonym=patient,
        loinc_code=loinc,
        value=value,
        unit=unit or UNITS[loinc],
        measured_at=timestamp(measured_at),
        device_id=device_id,
        point_of_care=point_of_care,
    )


def correction(
    loinc: str, value: float, reading_id: str, measured_at: datetime, *, unit: str = ""
) -> ReadingCorrected:
    """The producer's corrected value for a reading it sent (a lab's corrected result)."""
    return ReadingCorrected(
        reading_id=reading_id,
        patient_pseudonym=PATIENT,
        loinc_code=loinc,
        value=value,
        unit=unit or UNITS[loinc],
        measured_at=timestamp(measured_at),
    )


def correct(
    one: ReadingCorrected,
    plan: PlanInForce | None,
    state: PatientState | None = None,
    now: datetime = NOW,
) -> Outcome:
    return correct_reading(
        one, plan=plan, state=state or PatientState(), now=now, territory=TERRITORY
    )


def evaluate(
    one: ReadingRecorded,
    plan: PlanInForce | None,
    state: PatientState | None = None,
    now: datetime = NOW,
) -> Outcome:
    return evaluate_reading(
        one, plan=plan, state=state or PatientState(), now=now, territory=TERRITORY
    )


def feed(
    readings: Iterable[ReadingRecorded],
    plan: PlanInForce | None,
    state: PatientState | None = None,
    now: datetime = NOW,
) -> tuple[PatientState, list[Outcome]]:
    """Readings handled one after the other, as the patient's agent does."""
    state = state or PatientState()
    outcomes = []
    for one in readings:
        outcome = evaluate(one, plan, state, now)
        state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def review(
    reading_id: str,
    decision: ReviewDecision.ValueType,
    *,
    plan: PlanInForce | None,
    state: PatientState,
    now: datetime = NOW,
    reviewer: str = "",
    patient: str = PATIENT,
) -> Outcome:
    message = PointOfCareResultReviewed(
        reading_id=reading_id,
        patient_pseudonym=patient,
        reviewer_id=reviewer or LAB,
        decision=decision,
        reviewed_at=timestamp(now),
    )
    return review_result(message, plan=plan, state=state, now=now, territory=TERRITORY)


def action(
    kind: AlertAction.ValueType,
    alert_id: str,
    *,
    action_id: str,
    member_id: str = "",
    resolution: AlertResolution.ValueType = AlertResolution.ALERT_RESOLUTION_UNSPECIFIED,
    now: datetime = NOW,
    patient: str = PATIENT,
) -> AlertActionRequested:
    """A care-team member's action on an alert."""
    return AlertActionRequested(
        action_id=action_id,
        patient_pseudonym=patient,
        action=kind,
        alert_id=alert_id,
        member_id=member_id,
        resolution=resolution,
        requested_at=timestamp(now),
    )


def specs(outcome: Outcome) -> list[TopicSpec]:
    return [fact.spec for fact in outcome.facts]


def published(outcomes: Iterable[Outcome], spec: TopicSpec) -> list[Message]:
    return [fact.message for o in outcomes for fact in o.facts if fact.spec == spec]


def only(outcome: Outcome, spec: TopicSpec) -> Message:
    """The one message of `spec` the outcome publishes."""
    [message] = published([outcome], spec)
    return message
