"""Access agents: a critical chronic alert opens an urgent teleconsultation request."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
import structlog
from faust.types import TableT
from prometheus_client import Counter

from emeuse.registry import ALERT_RAISED, TELECONSULTATION_REQUESTED
from emeuse.runtime.bus import Event
from emeuse.runtime.service import Runtime
from services.access import handlers
from services.access.chronic_client import ChronicClient

log = structlog.get_logger("emeuse.access")
REQUESTS = Counter(
    "emeuse_access_requests_total",
    "Teleconsultation requests opened, by urgency and whether the care summary came with them.",
    ["urgency", "care_summary"],
)


def start_agents(rt: Runtime, requests: TableT, chronic: ChronicClient) -> None:
    async def open_request(event: Event) -> None:
        alert = event.message
        state = requests[alert.patient_pseudonym]
        request = await handlers.request_for_alert(
            alert,
            known_request_ids=handlers.known_ids(state),
            care_summary=chronic.care_summary,
            now=datetime.now(UTC),
        )
        if request is None:
            return
        await rt.bus.publish(
            TELECONSULTATION_REQUESTED,
            request,
            key=alert.patient_pseudonym,
            subject_pseudonym=alert.patient_pseudonym,
            occurred_at=datetime.now(UTC),
            cause=event.envelope,
            event_id=request.request_id,
        )
        requests[alert.patient_pseudonym] = handlers.with_request(state, request)
        urgency = handlers.Urgency.Name(request.urgency)
        REQUESTS.labels(urgency, str(request.care_summary_available).lower()).inc()
        log.info("request.opened", request_id=request.request_id, urgency=urgency)

    @rt.app.agent(rt.bus.topic(ALERT_RAISED), name="open_requests_for_alerts")
    async def open_requests_for_alerts(records: faust.StreamT) -> None:
        await rt.bus.process(records, ALERT_RAISED, open_request)
