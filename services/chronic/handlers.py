"""Chronic use cases: plain functions, protobuf in and out, state passed in and returned."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertRaised,
    AlertSeverity,
    CarePlanUpdated,
    ReadingRecorded,
)
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import READING_RECORDED
from emeuse.runtime.codec import InvalidEventError, missing_fields
from emeuse.runtime.envelope import EnvelopeError, territory_from_code, timestamp
from emeuse.runtime.pseudonym import is_pseudonym
from services.chronic.domain.measures import ReadingError, normalise, to_canonical
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
        try:
            measure, factor = to_canonical(band.loinc_code, band.unit)
        except ReadingError as exc:
            raise InvalidEventError(f"care plan: {exc}") from None
        # Stored in the canonical unit, the unit readings are normalised to.
        bands[band.loinc_code] = {
            "unit": measure.unit,
            "low": band.low * factor,
            "high": band.high * factor,
            "critical_low": band.critical_low * factor,
            "critical_high": band.critical_high * factor,
        }
    return bands


def normalised(reading: ReadingRecorded) -> ReadingRecorded:
    """A copy of the reading in its measure's canonical unit; InvalidEventError if impossible."""
    try:
        value, unit = normalise(reading.loinc_code, reading.value, reading.unit)
    except ReadingError as exc:
        raise InvalidEventError(str(exc)) from None
    copy = ReadingRecorded()
    copy.CopyFrom(reading)
    copy.value, copy.unit = value, unit
    return copy


def reading_from_device(
    reading: ReadingRecorded, territory_code: str
) -> tuple[ReadingRecorded, Territory.ValueType]:
    """A reading sent over gRPC, checked like one from Kafka: the normalised copy and the
    territory; InvalidEventError says what is wrong."""
    missing = missing_fields(READING_RECORDED, reading)
    if missing:
        raise InvalidEventError(f"reading lacks {', '.join(missing)}")
    if not is_pseudonym(reading.patient_pseudonym):
        raise InvalidEventError("patient_pseudonym must be a platform pseudonym (psn-...)")
    try:
        territory = territory_from_code(territory_code)
    except EnvelopeError as exc:
        raise InvalidEventError(str(exc)) from None
    return normalised(reading), territory


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
    """Check one reading against the patient's care plan, in the measure's canonical unit."""
    reading = normalised(reading)
    measured_at = reading.measured_at.ToDatetime(tzinfo=now.tzinfo)
    # The same measurement sent twice, under one id or by one device at one time, counts once.
    measurement = (
        f"{reading.device_id}|{reading.loinc_code}|{measured_at.isoformat()}"
        if reading.device_id
        else ""
    )
    if state.has_seen(reading.reading_id) or (measurement and state.has_seen(measurement)):
        return ReadingOutcome(state, None, "duplicate")
    new_state = state.with_reading(
        reading.reading_id, reading.loinc_code, Latest(reading.value, reading.unit, measured_at)
    )
    if measurement:
        new_state = new_state.with_seen(measurement)
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
