"""Access use cases: plain functions, protobuf in and out."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from google.protobuf import json_format

from emeuse.access.v1.access_events_pb2 import (
    CareSummaryMeasure,
    TeleconsultationRequested,
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


def request_id_for_alert(alert_id: str) -> str:
    # Derived from the alert, so an alert delivered twice opens one request.
    return str(uuid.uuid5(REQUEST_NAMESPACE, alert_id))


async def request_for_alert(
    alert: AlertRaised,
    *,
    known_request_ids: set[str],
    care_summary: CareSummaryLookup,
    now: datetime,
) -> TeleconsultationRequested | None:
    """The teleconsultation an alert calls for; None when not urgent or already requested."""
    urgency = urgency_for_alert(SEVERITY.get(alert.severity, "unspecified"))
    if urgency is None:
        return None
    request_id = request_id_for_alert(alert.alert_id)
    if request_id in known_request_ids:
        return None
    summary = await care_summary(alert.patient_pseudonym)
    return TeleconsultationRequested(
        request_id=request_id,
        patient_pseudonym=alert.patient_pseudonym,
        urgency=URGENCY[urgency.value],
        reason_code=f"chronic.alert.{SEVERITY[alert.severity]}",
        alert_id=alert.alert_id,
        care_summary=list(summary or ()),
        care_summary_available=summary is not None,
        requested_at=timestamp(now),
    )


def with_request(
    state: dict[str, list[dict[str, object]]], request: TeleconsultationRequested
) -> dict[str, list[dict[str, object]]]:
    requests = [
        *state.get("requests", []),
        json_format.MessageToDict(request, preserving_proto_field_name=True),
    ]
    return {"requests": requests}


def known_ids(state: dict[str, list[dict[str, object]]]) -> set[str]:
    return {str(request["request_id"]) for request in state.get("requests", [])}


def requests_of(
    state: dict[str, list[dict[str, object]]] | None,
) -> list[TeleconsultationRequested]:
    return [
        json_format.ParseDict(request, TeleconsultationRequested())
        for request in (state or {}).get("requests", [])
    ]
