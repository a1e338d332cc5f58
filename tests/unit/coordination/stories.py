"""Axis events of one person's path, as the services publish them (for the unit tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from emeuse.access.v1 import access_events_pb2 as access
from emeuse.chronic.v1 import chronic_events_pb2 as chronic
from emeuse.home.v1 import home_events_pb2 as home
from emeuse.prevention.v1 import prevention_events_pb2 as prevention

# Now: the problems a handler keeps are those open when it runs (windows not yet passed).
T0 = datetime.now(UTC).replace(second=0, microsecond=0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stamp(moment: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


def alert_raised(person: str, alert: str, when: datetime, severity: str = "CRITICAL"):
    return chronic.AlertRaised(
        alert_id=alert,
        patient_pseudonym=person,
        severity=chronic.AlertSeverity.Value(f"ALERT_SEVERITY_{severity}"),
        rule="inr.critical_high",
        reason="34714-6 5.6 {INR} above critical high 5",
        raised_at=stamp(when),
    )


def alert_resolved(person: str, alert: str, when: datetime):
    return chronic.AlertResolved(
        alert_id=alert,
        patient_pseudonym=person,
        resolution=chronic.AlertResolution.ALERT_RESOLUTION_HANDLED,
        resolved_at=stamp(when),
    )


def requested(person: str, request: str, when: datetime, cause: str = ""):
    return access.ConsultationRequested(
        request_id=request,
        territory="55",
        patient_pseudonym=person,
        urgency=access.Urgency.URGENCY_SAME_DAY,
        profession=access.Profession.PROFESSION_GP,
        reason_code="inr-critical",
        cause_id=cause,
        requested_at=stamp(when),
    )


def booked(person: str, request: str, booking: str, when: datetime):
    return access.SlotBooked(
        booking_id=booking,
        territory="55",
        request_id=request,
        patient_pseudonym=person,
        slot_id="slot-1",
        modality=access.Modality.MODALITY_VIDEO,
        booked_at=stamp(when),
    )


def no_show(person: str, request: str, booking: str, when: datetime):
    return access.ConsultationStatusChanged(
        booking_id=booking,
        territory="55",
        request_id=request,
        patient_pseudonym=person,
        status=access.ConsultationStatus.CONSULTATION_STATUS_NO_SHOW,
        changed_at=stamp(when),
    )


def incident(person: str, incident_id: str, when: datetime, kind: str = "FALL"):
    return home.IncidentRaised(
        incident_id=incident_id,
        resident_pseudonym=person,
        kind=home.IncidentKind.Value(f"INCIDENT_KIND_{kind}"),
        raised_at=stamp(when),
        reason="fall detected in the kitchen",
    )


def incident_resolved(person: str, incident_id: str, when: datetime):
    return home.IncidentResolved(
        incident_id=incident_id,
        resident_pseudonym=person,
        outcome=home.IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME,
        resolved_at=stamp(when),
        kind=home.IncidentKind.INCIDENT_KIND_FALL,
    )


def receipt(person: str, message: str, when: datetime, status: str = "DELIVERED"):
    return prevention.DeliveryReceiptReported(
        receipt_id=f"r-{message}",
        message_id=message,
        person_pseudonym=person,
        status=prevention.DeliveryStatus.Value(f"DELIVERY_STATUS_{status}"),
        channel="sms",
        attempt=1,
        reported_at=stamp(when),
    )
