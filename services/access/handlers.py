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
