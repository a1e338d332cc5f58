"""Chronic use cases: readings and lab reviews in, alerts out; protobuf in and out, state
passed in and returned."""

from __future__ import annotations

from datetime import UTC, datetime

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertResolution,
    PointOfCareResultReviewed,
    ReadingCorrected,
    ReadingRecorded,
    ReviewDecision,
)
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import READING_RECORDED
from emeuse.runtime.codec import InvalidEventError, missing_fields
from emeuse.runtime.envelope import EnvelopeError, territory_from_code
from emeuse.runtime.events import Fact
from emeuse.runtime.pseudonym import is_pseudonym
from services.chronic.alerts import (
    NewAlert,
    Outcome,
    close_gap,
    close_review,
    derived_id,
    join_episode,
    raise_alert,
    resolve,
)
from services.chronic.domain.measures import ReadingError, normalise
from services.chronic.domain.monitoring import (
    CRITICAL,
    VALUES,
    AlertState,
    Correction,
    PatientState,
    PendingResult,
    Result,
)
from services.chronic.domain.plan import HEART_FAILURE, ROLE_LAB, Band, PlanInForce
from services.chronic.domain.thresholds import Breach, Severity, check_value
from services.chronic.domain.trends import (
    CONSECUTIVE_OUT_OF_TARGET,
    WEIGHT,
    out_of_target_run,
    weight_gain,
)


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


def evaluate_reading(
    reading: ReadingRecorded,
    *,
    plan: PlanInForce | None,
    state: PatientState,
    now: datetime,
    territory: str,
) -> Outcome:
    """Check one reading against the patient's care plan, in the measure's canonical unit.

    A point-of-care result waits for the lab's review; any other is judged at once."""
    reading = normalised(reading)
    if plan is None:
        # No care plan to place it in: the sender learns why from the dead letter.
        raise InvalidEventError(
            "patient is not enrolled in remote monitoring: no care plan to place the reading in"
        )
    measured_at = reading.measured_at.ToDatetime(tzinfo=UTC)
    # The same measurement sent twice, under one id or by one device at one time, counts once.
    measurement = (
        f"{reading.device_id}|{reading.loinc_code}|{measured_at.isoformat()}"
        if reading.device_id
        else ""
    )
    if state.has_seen(reading.reading_id) or (measurement and state.has_seen(measurement)):
        return Outcome(state, outcome="duplicate")
    state = state.changed()
    state.remember(*filter(None, (reading.reading_id, measurement)))
    patient = reading.patient_pseudonym
    # Placed under the plan's code for what it measures (a capillary INR under the lab's).
    loinc = plan.monitored_code(reading.loinc_code) or reading.loinc_code
    if reading.point_of_care:
        state.pending_review[reading.reading_id] = PendingResult(
            reading_id=reading.reading_id,
            value=reading.value,
            unit=reading.unit,
            measured_at=measured_at,
            loinc_code=loinc,
            received_at=now,
        )
        state.measured(loinc, measured_at)
        return Outcome(state, close_gap(state, patient, loinc, now, plan), "pending_review")
    result = Result(
        reading_id=reading.reading_id,
        value=reading.value,
        unit=reading.unit,
        measured_at=measured_at,
    )
    return _judge(state, plan, patient, loinc, result, now, territory, point_of_care=False)


def as_reading(correction: ReadingCorrected) -> ReadingRecorded:
    """The reading as corrected, checked and normalised like any reading."""
    reading = ReadingRecorded(
        reading_id=correction.reading_id,
        patient_pseudonym=correction.patient_pseudonym,
        loinc_code=correction.loinc_code,
        value=correction.value,
        unit=correction.unit,
        device_id=correction.device_id,
    )
    reading.measured_at.CopyFrom(correction.measured_at)
    return reading


def correct_reading(
    correction: ReadingCorrected,
    *,
    plan: PlanInForce | None,
    state: PatientState,
    now: datetime,
    territory: str,
) -> Outcome:
    """A producer's corrected value for a reading it sent: it replaces the earlier value
    and is judged again, so it may raise, update or resolve an alert, which says it comes
    from a correction and shows both values. A correction of a reading never received is
    judged as a new reading, marked as a correction; the same correction sent again, or
    the original arriving after it, changes nothing."""
    reading = normalised(as_reading(correction))
    measured_at = reading.measured_at.ToDatetime(tzinfo=UTC)
    patient, reading_id = reading.patient_pseudonym, reading.reading_id
    # Placed like the reading it corrects: under the plan's code for what it measures.
    loinc = (plan.monitored_code(reading.loinc_code) if plan else None) or reading.loinc_code
    earlier = state.result_of(reading_id)
    if earlier is not None and earlier[0] != loinc:
        raise InvalidEventError(
            f"correction of {reading_id!r} changes its measure from {earlier[0]} to {loinc}; "
            "send a new reading instead"
        )
    before = earlier[1] if earlier is not None else None
    if before is not None and (before.value, before.unit, before.measured_at) == (
        reading.value,
        reading.unit,
        measured_at,
    ):
        return Outcome(state, outcome="duplicate")
    state = state.changed()
    if not state.has_seen(reading_id):
        state.remember(reading_id)
    fix = Correction(
        reading_id=reading_id,
        previous_value=before.value if before is not None else None,
        corrected_value=reading.value,
        unit=reading.unit,
    )
    pending = state.pending_review.get(reading_id)
    if pending is not None:
        # Not validated yet: the lab reviews the corrected value.
        pending.value, pending.unit, pending.measured_at = reading.value, reading.unit, measured_at
        state.measured(loinc, measured_at)
        return Outcome(state, close_gap(state, patient, loinc, now, plan), "pending_review")
    if before is not None:
        state.forget(loinc, reading_id)
    result = Result(
        reading_id=reading_id, value=reading.value, unit=reading.unit, measured_at=measured_at
    )
    return _judge(
        state, plan, patient, loinc, result, now, territory, point_of_care=False, correction=fix
    )


def review_result(
    review: PointOfCareResultReviewed,
    *,
    plan: PlanInForce | None,
    state: PatientState,
    now: datetime,
    territory: str,
) -> Outcome:
    """The lab's verdict on a point-of-care result: a validated one is judged, with the
    prescriber alerted first; a rejected one never alerts."""
    key = f"review|{review.reading_id}"
    if state.has_seen(key):
        return Outcome(state, outcome="duplicate")
    pending = state.pending_review.get(review.reading_id)
    if pending is None:
        raise InvalidEventError(f"no point-of-care result {review.reading_id!r} awaits review")
    if plan is None:
        raise InvalidEventError("patient is not enrolled in remote monitoring")
    reviewer = plan.member(review.reviewer_id)
    if reviewer is None or reviewer.role != ROLE_LAB:
        raise InvalidEventError("reviewer is not the medical lab on the patient's care team")
    if review.decision == ReviewDecision.REVIEW_DECISION_UNSPECIFIED:
        raise InvalidEventError("review decision must be validated or rejected")
    state = state.changed()
    # The decision too: the same review asked again (a lost answer) is answered as done.
    state.remember(key, f"{key}|{review.decision}")
    del state.pending_review[review.reading_id]
    patient = review.patient_pseudonym
    reviewed = close_review(state, patient, review.reading_id, now)
    if review.decision == ReviewDecision.REVIEW_DECISION_REJECTED:
        return Outcome(state, reviewed, "rejected")
    result = Result(
        reading_id=pending.reading_id,
        value=pending.value,
        unit=pending.unit,
        measured_at=pending.measured_at,
    )
    outcome = _judge(
        state, plan, patient, pending.loinc_code, result, now, territory, point_of_care=True
    )
    outcome.facts[:0] = reviewed
    return outcome


def breaches(
    plan: PlanInForce, band: Band, history: list[Result], loinc: str, new: Result
) -> list[Breach]:
    """Every rule the new result breaks, the most severe first."""
    found = []
    try:
        threshold = check_value(loinc, new.value, new.unit, band.threshold)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None
    if threshold is not None:
        found.append(threshold)
    if loinc == WEIGHT and plan.programme == HEART_FAILURE:
        gain = weight_gain(history, new)
        if gain is not None:
            kg, earlier = gain
            found.append(
                Breach(
                    Severity.WARNING,
                    "trend.weight_gain",
                    f"{loinc} +{kg:.1f} kg within 3 days (from {earlier.value:g} kg)",
                )
            )
    run = out_of_target_run(history, new, band.target_low, band.target_high)
    if run >= CONSECUTIVE_OUT_OF_TARGET:
        found.append(
            Breach(
                Severity.WARNING,
                "trend.consecutive_out_of_target",
                f"{loinc} {run} consecutive values outside target "
                f"{band.target_low:g}-{band.target_high:g} {band.unit}",
            )
        )
    # Stable sort: critical first, then in the order above (threshold, weight, run).
    return sorted(found, key=lambda b: b.severity != Severity.CRITICAL)


def _judge(
    state: PatientState,
    plan: PlanInForce | None,
    patient: str,
    loinc: str,
    result: Result,
    now: datetime,
    territory: str,
    *,
    point_of_care: bool,
    correction: Correction | None = None,
) -> Outcome:
    # Placed again: the plan may have changed while a point-of-care result awaited review.
    loinc = (plan.monitored_code(loinc) if plan else None) or loinc
    state.record(loinc, result)
    facts = close_gap(state, patient, loinc, now, plan)
    band = plan.bands.get(loinc) if plan else None
    if plan is None or band is None:
        return Outcome(state, facts, "not_monitored")
    found = breaches(plan, band, state.history[loinc], loinc, result)
    # A corrected result is judged again within the alert it is part of, while that is open.
    held = state.alert_with(loinc, result.reading_id) if correction else None
    episode = held or state.running_episode(loinc)
    if not found:
        if held is not None and correction is not None:
            facts.append(_corrected_in_range(state, held, patient, correction, now))
            return Outcome(state, facts, "in_range")
        # Back in range after the run: the next abnormal value is a new episode.
        if episode is not None and result.measured_at > (episode.last_measured_at or now):
            episode.run_ended = True
        return Outcome(state, facts, "in_range")
    breach = found[0]
    severity = breach.severity.value
    # One alert per episode: a further abnormal value joins the running alert, unless it
    # is critical and that one is not (the critical alert replaces it), or it is a
    # lab-validated point-of-care result (its prescriber is always told).
    if (
        episode is not None
        and not point_of_care
        and (episode.severity == CRITICAL or severity != CRITICAL)
    ):
        if result.measured_at > (episode.last_measured_at or result.measured_at):
            episode.last_measured_at = result.measured_at
        facts.append(
            join_episode(
                episode, patient, result.reading_id, breach.rule, breach.reason, now, correction
            )
        )
        return Outcome(state, facts, severity)
    if episode is not None and severity == CRITICAL and episode.severity != CRITICAL:
        superseded = AlertResolution.ALERT_RESOLUTION_SUPERSEDED
        facts.append(resolve(state, episode, patient, superseded, "", now))
    elif episode is not None:
        episode.run_ended = True  # the new alert carries the episode from here
    new = NewAlert(
        # Per patient and per alert raised: two patients' "r-1" never share an alert id.
        alert_id=derived_id(patient, result.reading_id, str(state.alerts_raised)),
        episode=VALUES,
        loinc_code=loinc,
        severity=severity,
        rule=breach.rule,
        reason=breach.reason,
        reading_ids=[result.reading_id],
        measured_at=result.measured_at,
        territory=territory,
        prescriber_first=point_of_care,
        trigger=result,
        correction=correction,
    )
    facts.append(raise_alert(state, patient, plan, new, now))
    delay = now - result.measured_at if point_of_care else None
    return Outcome(state, facts, severity, point_of_care_to_alert=delay)


def _corrected_in_range(
    state: PatientState, alert: AlertState, patient: str, correction: Correction, now: datetime
) -> Fact:
    """A corrected result that now breaks no rule: the alert it alone raised is resolved
    (CORRECTED); an episode with other results goes on, told of the correction."""
    if alert.reading_ids == [correction.reading_id]:
        corrected = AlertResolution.ALERT_RESOLUTION_CORRECTED
        return resolve(state, alert, patient, corrected, "", now, correction)
    reason = (
        f"{alert.loinc_code} {correction.corrected_value:g} {correction.unit} "
        "after correction, within range"
    )
    return join_episode(
        alert, patient, correction.reading_id, "correction.in_range", reason, now, correction
    )
