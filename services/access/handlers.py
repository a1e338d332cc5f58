"""Requests other services' events call for: plain functions, protobuf in and out."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from emeuse.access.v1.access_events_pb2 import (
    CareSummaryMeasure,
    ConsultationRequested,
    Profession,
    RequesterRole,
    Urgency,
)
from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, AlertSeverity
from emeuse.home.v1.home_events_pb2 import (
    IncidentKind,
    IncidentOutcome,
    IncidentRaised,
    IncidentResolved,
)
from emeuse.runtime.envelope import timestamp
from services.access.domain.urgency import urgency_for_alert

REQUEST_NAMESPACE = uuid.UUID("a11ce55e-0c0d-4c55-8a55-e4e05e000055")
URGENCY = {
    "immediate": Urgency.URGENCY_IMMEDIATE,
    "same_day": Urgency.URGENCY_SAME_DAY,
    "within_7_days": Urgency.URGENCY_WITHIN_7_DAYS,
    "routine": Urgency.URGENCY_ROUTINE,
}
SEVERITY = {
    AlertSeverity.ALERT_SEVERITY_WARNING: "warning",
    AlertSeverity.ALERT_SEVERITY_CRITICAL: "critical",
}

# Asks the chronic service for the patient's latest values; None when it cannot answer.
CareSummaryLookup = Callable[[str], Awaitable[Sequence[CareSummaryMeasure] | None]]


def request_id_for(cause_id: str) -> str:
    # Derived from the cause, so an alert delivered twice makes one request.
    return str(uuid.uuid5(REQUEST_NAMESPACE, cause_id))


async def request_for_alert(
    alert: AlertRaised, *, territory: str, care_summary: CareSummaryLookup, now: datetime
) -> ConsultationRequested | None:
    """The GP teleconsultation a critical alert calls for; None for a warning."""
    urgency = urgency_for_alert(SEVERITY.get(alert.severity, "unspecified"))
    if urgency is None:
        return None
    summary = await care_summary(alert.patient_pseudonym)
    return ConsultationRequested(
        request_id=request_id_for(alert.alert_id),
        territory=territory,
        patient_pseudonym=alert.patient_pseudonym,
        urgency=URGENCY[urgency.value],
        profession=Profession.PROFESSION_GP,
        reason_code=f"chronic.alert.{SEVERITY[alert.severity]}",
        requested_by=RequesterRole.REQUESTER_ROLE_SERVICE,
        requester_id="emeuse.chronic",
        cause_id=alert.alert_id,
        care_summary=list(summary or ()),
        care_summary_available=summary is not None,
        requested_at=timestamp(now),
    )


# Falls in 30 days from which a GP reviews the resident (repeated falls), and how soon.
REPEATED_FALLS = 2


def request_for_incident(
    incident: IncidentRaised | IncidentResolved, *, territory: str, now: datetime
) -> ConsultationRequested | None:
    """A GP consultation for a resident hurt in a fall and kept at home (same day), or
    who fell again within 30 days (within 7 days); None for any other incident."""
    if incident.kind != IncidentKind.INCIDENT_KIND_FALL:
        return None
    if isinstance(incident, IncidentResolved):
        if (
            not incident.injury
            or incident.outcome == IncidentOutcome.INCIDENT_OUTCOME_SENT_TO_HOSPITAL
        ):
            return None  # no injury, or the hospital has the resident already
        urgency, reason = Urgency.URGENCY_SAME_DAY, "home.fall.injury"
    else:
        if incident.falls_in_last_30_days < REPEATED_FALLS:
            return None
        urgency, reason = Urgency.URGENCY_WITHIN_7_DAYS, "home.fall.repeated"
    return ConsultationRequested(
        request_id=request_id_for(f"{incident.incident_id}/{reason}"),
        territory=territory,
        patient_pseudonym=incident.resident_pseudonym,
        urgency=urgency,
        profession=Profession.PROFESSION_GP,
        reason_code=reason,
        requested_by=RequesterRole.REQUESTER_ROLE_SERVICE,
        requester_id="emeuse.home",
        cause_id=incident.incident_id,
        requested_at=timestamp(now),
    )
