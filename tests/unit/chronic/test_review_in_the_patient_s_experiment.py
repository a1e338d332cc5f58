"""The lab's review of a point-of-care result names no experiment: it is published in the
patient's (the care plan's), so the alert it releases (chronic.point_of_care_inr_to_alert)
is counted there, not in the service's own experiment."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1.chronic_events_pb2 import PointOfCareResultReviewed, ReviewDecision
from emeuse.runtime.auth import Caller
from emeuse.runtime.roles import CURRENT_CALLER
from services.chronic.care_plan import record_care_plan
from services.chronic.grpc_api import ChronicServicer
from tests.unit.chronic.plans import (
    INR,
    LAB,
    NOW,
    PATIENT,
    TERRITORY,
    anticoagulation_plan,
    in_force,
)
from tests.unit.chronic.readings import evaluate, reading
from tests.unit.chronic.test_coordinator_writes import Context, Here


class Bus:
    """Records each event with the experiment the gRPC edge gives it."""

    def __init__(self) -> None:
        self.published: list[tuple[Any, str | None]] = []

    async def publish(self, spec: Any, message: Any, **fields: Any) -> Any:
        self.published.append((message, fields.get("experiment_id")))

        class Envelope:
            event_id = "ev-1"

        return Envelope()


def test_a_lab_review_is_published_in_the_experiment_the_patient_is_enrolled_in():
    stored = record_care_plan(
        anticoagulation_plan(),
        previous=None,
        territory=TERRITORY,
        recorded_at=NOW,
        experiment="telesuivi-meuse",
    )
    capillary = reading(INR, 5.6, "inr-poc-1", NOW - timedelta(minutes=30), point_of_care=True)
    pending = evaluate(capillary, in_force(anticoagulation_plan())).state
    assert "inr-poc-1" in pending.pending_review
    bus = Bus()
    servicer = ChronicServicer(Here(), bus, {PATIENT: stored}, {PATIENT: pending})  # type: ignore[arg-type]
    request = api.ReviewPointOfCareResultRequest(
        patient_pseudonym=PATIENT,
        reading_id="inr-poc-1",
        reviewer_id=LAB,
        decision=ReviewDecision.REVIEW_DECISION_VALIDATED,
    )
    token = CURRENT_CALLER.set(Caller("operator", "operator"))
    try:
        asyncio.run(servicer.ReviewPointOfCareResult(request, Context()))  # type: ignore[arg-type]
    finally:
        CURRENT_CALLER.reset(token)
    [(review, experiment)] = bus.published
    assert isinstance(review, PointOfCareResultReviewed)
    assert experiment == "telesuivi-meuse"
