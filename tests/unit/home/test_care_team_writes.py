"""A care-team caller acts on a home's incidents and records its visits only when on the
care team of its resident: checked on the instance holding the home, before anything is
published or said of the home; a call forwarded there names the caller, whom it checks."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from emeuse.home.v1 import home_service_pb2 as api
from emeuse.runtime.auth import ON_BEHALF_OF, Caller
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from services.chronic.care_plan import check_care_plan
from services.home.grpc_api import HomeServicer
from tests.unit.home.homes import DAUGHTER, RESIDENT, at, enrolled, fall, feed, raised
from tests.unit.home.test_grpc_actions import Aborted, Bus, Context, Router
from tests.unit.runtime.test_care_teams import followed, plan_record

NURSE = Caller("ide-0107", "care-team", member="ide-0107")
OTHER_NURSE = Caller("ide-0999", "care-team", member="ide-0999")


def a_fall() -> tuple[dict[str, Any], str]:
    """The home's table with a fall raised at 10:00, and the incident's id."""
    state, outcomes = feed(enrolled(), fall(at("10:00")))
    [incident] = raised(outcomes)
    return {RESIDENT: state.to_json()}, incident.incident_id


def as_caller(caller: Caller, call: Any) -> Any:
    """The answer of `call()`, made by `caller`, or the Aborted status."""
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(call())
    except Aborted as exc:
        return exc
    finally:
        CURRENT_CALLER.reset(token)


def acknowledge(caller: Caller, teams: CareTeams) -> tuple[Any, Bus]:
    homes, incident_id = a_fall()
    bus = Bus(homes)
    servicer = HomeServicer(Router(), bus, homes, teams)  # type: ignore[arg-type]
    request = api.AcknowledgeIncidentRequest(
        resident_pseudonym=RESIDENT, incident_id=incident_id, contact_id=DAUGHTER
    )
    answer = as_caller(caller, lambda: servicer.AcknowledgeIncident(request, Context()))  # type: ignore[arg-type]
    return answer, bus


def test_a_member_of_the_residents_care_team_acknowledges_an_incident_and_another_is_refused():
    teams = followed(plan_record(RESIDENT, ("ide-0107",)))
    done, bus = acknowledge(NURSE, teams)
    assert done.incident.acknowledged_by == DAUGHTER
    assert len(bus.published) == 1
    refused, bus = acknowledge(OTHER_NURSE, teams)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == "caller ide-0999 is not on this patient's care team"
    assert bus.published == []


def test_a_coordinator_acts_on_the_homes_enrolled_in_its_territory_only():
    teams = followed()
    done, _ = acknowledge(Caller("coord-55", "coordinator", territory="55"), teams)
    assert done.incident.acknowledged_by == DAUGHTER
    refused, bus = acknowledge(Caller("coord-54", "coordinator", territory="54"), teams)
    assert refused.details == "caller coord-54 coordinates territory 54 only"
    assert bus.published == []


def test_before_the_care_plans_are_read_a_care_team_write_is_asked_to_try_again():
    unread, bus = acknowledge(NURSE, CareTeams(accepts=check_care_plan))
    assert unread.code == grpc.StatusCode.UNAVAILABLE
    assert bus.published == []


def check_in(caller: Caller, teams: CareTeams, resident: str = RESIDENT) -> Any:
    homes = {RESIDENT: enrolled().to_json()}
    servicer = HomeServicer(Router(), Bus(homes), homes, teams)  # type: ignore[arg-type]
    request = api.CheckInRequest(
        resident_pseudonym=resident, visit_id="visit-0001", aide_id="aide-0001"
    )
    return as_caller(caller, lambda: servicer.CheckIn(request, Context()))  # type: ignore[arg-type]


def test_a_visit_is_recorded_by_the_residents_care_team_only_and_nothing_is_said_to_others():
    teams = followed(plan_record(RESIDENT, ("ide-0107",)))
    # Let through, the member hears the visit is not there; the other only that it may not.
    assert check_in(NURSE, teams).code == grpc.StatusCode.NOT_FOUND
    refused = check_in(OTHER_NURSE, teams)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert "not on this patient's care team" in refused.details
    # A home never enrolled is refused the same way, not "not enrolled": nothing said of it.
    unknown = check_in(NURSE, teams, resident=random_pseudonym())
    assert unknown.code == grpc.StatusCode.PERMISSION_DENIED


class Elsewhere:
    """Another instance holds the home: the call is forwarded there."""

    def __init__(self) -> None:
        self.metadata: Any = None

    async def answer(self, homes: Any, key: str, context: Any, local: Any, remote: Any) -> Any:
        return await remote(self, 5.0, (("x-emeuse-forwarded", "1"),))

    def unary_unary(self, *_: Any, **__: Any) -> Any:
        async def call(request: Any, timeout: float, metadata: Any) -> Any:
            self.metadata = metadata
            return api.AcknowledgeIncidentResponse()

        return call


def test_a_write_forwarded_to_the_homes_owner_names_the_caller_the_owner_checks():
    elsewhere = Elsewhere()
    servicer = HomeServicer(elsewhere, None, {}, followed())  # type: ignore[arg-type]
    request = api.AcknowledgeIncidentRequest(
        resident_pseudonym=RESIDENT, incident_id="inc-1", contact_id=DAUGHTER
    )
    as_caller(OTHER_NURSE, lambda: servicer.AcknowledgeIncident(request, Context()))  # type: ignore[arg-type]
    assert (ON_BEHALF_OF, OTHER_NURSE.caller_id) in elsewhere.metadata
