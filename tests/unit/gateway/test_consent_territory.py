"""A coordinator with a territory records consents for the patients of its territory only:
the territory the call names (the gateway holds no enrolment), checked before the partner
is looked up or anything is published."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.runtime.auth import Caller
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from services.gateway.grpc_api import GatewayServicer
from tests.unit.chronic.test_coordinator_writes import Aborted, Context


class NoPartners:
    """A directory read to its end, with no partner in it."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()

    def active(self, partner_id: str) -> Any:
        return None


def record(caller: Caller) -> Any:
    servicer = GatewayServicer(None, None, {}, NoPartners(), "")  # type: ignore[arg-type]
    request = api.RecordConsentRequest(
        patient_pseudonym=random_pseudonym(),
        partner_id="partner-glucomind",
        purpose="telemonitoring",
        granted=True,
        territory="55",
        experiment_id="exp-telesurv",
    )
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(servicer.RecordConsent(request, Context()))  # type: ignore[arg-type]
    except Aborted as exc:
        return exc
    finally:
        CURRENT_CALLER.reset(token)


def test_a_consent_is_recorded_by_the_coordinator_of_the_territory_named_only():
    refused = record(Caller("coord-54", "coordinator", territory="54"))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == "caller coord-54 coordinates territory 54 only"
    # Let through, the others reach the partner directory (which has no such partner).
    for caller in (Caller("coord-55", "coordinator", territory="55"), Caller("op", "operator")):
        assert record(caller).code == grpc.StatusCode.NOT_FOUND, caller
