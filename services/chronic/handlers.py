"""Chronic use cases: plain functions, protobuf in and out, state passed in and returned."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertRaised,
    AlertSeverity,
    CarePlanUpdated,
    ReadingRecorded,
)
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import timestamp
from services.chronic.domain.monitoring import Latest, PatientState
from services.chronic.domain.thresholds import Severity, Threshold, check_value

ALERT_NAMESPACE = uuid.UUID("0c7d3a52-55f4-4c7b-9a0e-c4b0e1a1e055")
SEVERITY = {
    Severity.WARNING: AlertSeverity.ALERT_SEVERITY_WARNING,
    Severity.CRITICAL: AlertSeverity.ALERT_SEVERITY_CRITICAL,
}

CarePlan = dict[str, dict[str, object]]


def care_plan_from_event(plan: CarePlanUpdated) -> CarePlan:
    """The table form of a care plan; a band that cannot alert is refused."""
    bands: CarePlan = {}
    for band in plan.thresholds:
        if not band.loinc_code or not band.unit:
            raise InvalidEventError("every care-plan threshold needs a LOINC code and a unit")
        if not band.critical_low <= band.low <= band.high <= band.critical_high:
            raise InvalidEventError(
                f"threshold for {band.loinc_code} must satisfy "
                "critical_low <= low <= high <= critical_high"
            )
        bands[band.loinc_code] = {
            "unit": band.unit,
            "low": band.low,
            "high": band.high,
            "critical_low": band.critical_low,
            "critical_high": band.critical_high,
        }
    return bands


def _threshold(plan: CarePlan, loinc: str) -> Threshold | None:
    band = plan.get(loinc)
    if band is None:
        return None
    return Threshold(
        unit=str(band["unit"]),
        low=float(band["low"]),  # type: ignore[arg-type]
        high=float(band["high"]),  # type: ignore[arg-type]
        critical_low=float(band["critical_low"]),  # type: ignore[arg-type]
        critical_high=float(band["critical_high"]),  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class ReadingOutcome:
    """What a reading did: the new state, the alert to raise if any, and a label for metrics."""

    state: PatientState
    alert: AlertRaised | None
    outcome: str


def evaluate_reading(
    reading: ReadingRecorded, *, plan: CarePlan, state: PatientState, now: datetime
) -> ReadingOutcome:
    """Check one reading against the patient's care plan."""
    if not math.isfinite(reading.value):
        raise InvalidEventError(f"reading value {reading.value} is not a number")
    if state.has_seen(reading.reading_id):
        return ReadingOutcome(state, None, "duplicate")
    measured_at = reading.measured_at.ToDatetime(tzinfo=now.tzinfo)
    new_state = state.with_reading(
        reading.reading_id, reading.loinc_code, Latest(reading.value, reading.unit, measured_at)
    )
    threshold = _threshold(plan, reading.loinc_code)
    if threshold is None:
        return ReadingOutcome(new_state, None, "not_monitored")
    try:
        breach = check_value(reading.loinc_code, reading.value, reading.unit, threshold)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None
    if breach is None:
        return ReadingOutcome(new_state, None, "in_range")
    # Derived from the reading, so a reading handled twice raises the same alert id.
    alert_id = str(uuid.uuid5(ALERT_NAMESPACE, reading.reading_id))
    alert = AlertRaised(
        alert_id=alert_id,
        patient_pseudonym=reading.patient_pseudonym,
        severity=SEVERITY[breach.severity],
        rule=breach.rule,
        reason=breach.reason,
        reading_ids=[reading.reading_id],
        loinc_code=reading.loinc_code,
        raised_at=timestamp(now),
    )
    return ReadingOutcome(new_state.with_alert(alert_id), alert, breach.severity.value)
