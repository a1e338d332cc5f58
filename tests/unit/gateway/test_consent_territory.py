"""A coordinator with a territory records consents for the patients of its territory only:
the territory the call names and the patient's, where the care plans chronic accepts place
it (every gateway instance follows them, runtime/care_teams.py); a patient with no plan is
refused as another territory's. Checked before the partner is looked up or anything is
published; UNAVAILABLE until the plans are read. Other callers keep what they had."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.runtime.auth import Caller
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from services.chronic.care_plan import check_care_plan
from services.gateway.grpc_api import GatewayServicer
from tests.unit.chronic.test_coordinator_writes import Aborted, Context
from tests.unit.runtime.test_care_teams import followed, plan_record

COORD_54 = Caller("coord-54", "coordinator", territory="54")
COORD_55 = Caller("coord-55", "coordinator", territory="55")
OPERATOR = Caller("op", "operator")
# Patients followed in Meuse (55) and in Meurthe-et-Moselle (54).
IN_55, IN_54 = random_pseudonym(), random_pseudonym()
FOLLOWED = followed(
    plan_record(IN_55, ("gp-0042",)),
    plan_record(IN_54, ("gp-0042",), territory=Territory.TERRITORY_MEURTHE_ET_MOSELLE),
)


class NoPartners:
    """A directory read to its end, with no partner in it."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()

    def active(self, partner_id: str) -> Any:
        return None


def record(caller: Caller, patient: str, territory: str = "55", teams: CareTeams = FOLLOWED) -> Any:
    servicer = GatewayServicer(None, None, {}, NoPartners(), "", teams)  # type: ignore[arg-type]
    request = api.RecordConsentRequest(
        patient_pseudonym=patient,
        partner_id="partner-glucomind",
        purpose="telemonitoring",
        granted=True,
        territory=territory,
        experiment_id="exp-telesurv",
    )
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(servicer.RecordConsent(request, Context()))  # type: ignore[arg-type]
    except Aborted as exc:
        return exc
    finally:
        CURRENT_CALLER.reset(token)


def elsewhere(answer: Any, caller: Caller) -> bool:
    return answer.code == grpc.StatusCode.PERMISSION_DENIED and answer.details == (
        f"caller {caller.caller_id} coordinates territory {caller.territory} only"
    )


def test_a_consent_is_recorded_by_the_coordinator_of_the_territory_named_only():
    assert elsewhere(record(COORD_54, IN_55), COORD_54)
    # Let through, the others reach the partner directory (which has no such partner).
    for caller in (COORD_55, OPERATOR):
        assert record(caller, IN_55).code == grpc.StatusCode.NOT_FOUND, caller


def test_a_coordinator_naming_its_own_territory_is_refused_a_patient_followed_in_another():
    assert elsewhere(record(COORD_55, IN_54, territory="55"), COORD_55)
    assert elsewhere(record(COORD_54, IN_55, territory="54"), COORD_54)
    assert record(COORD_54, IN_54, territory="54").code == grpc.StatusCode.NOT_FOUND


def test_a_patient_with_no_care_plan_is_refused_to_a_coordinator_and_left_to_the_operator():
    stranger = random_pseudonym()
    assert elsewhere(record(COORD_55, stranger), COORD_55)
    assert record(OPERATOR, stranger).code == grpc.StatusCode.NOT_FOUND
    # A coordinator without a territory is not restricted.
    assert record(Caller("coord-all", "coordinator"), stranger).code == grpc.StatusCode.NOT_FOUND


def test_before_the_care_plans_are_read_a_coordinator_is_answered_unavailable():
    unread = CareTeams(accepts=check_care_plan)
    waiting = record(COORD_55, IN_55, teams=unread)
    assert waiting.code == grpc.StatusCode.UNAVAILABLE
    assert "try again in a few seconds" in waiting.details
    assert record(OPERATOR, IN_55, teams=unread).code == grpc.StatusCode.NOT_FOUND
