"""GetHomeStatus answers a care-team caller about the homes of its own patients only: on
the instance holding the home, or forwarded to it naming the caller, whom it checks."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from emeuse.home.v1 import home_service_pb2 as api
from emeuse.runtime.auth import ON_BEHALF_OF, Caller
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.roles import CURRENT_CALLER
from services.chronic.care_plan import check_care_plan
from services.home.grpc_api import HomeServicer
from tests.unit.home.homes import RESIDENT, enrolled
from tests.unit.home.test_grpc_actions import Aborted, Context, Router
from tests.unit.runtime.test_care_teams import followed, plan_record

NURSE = Caller("ide-0107", "care-team", member="ide-0107")
OTHER_NURSE = Caller("ide-0999", "care-team", member="ide-0999")
REQUEST = api.GetHomeStatusRequest(resident_pseudonym=RESIDENT)


def home_status(caller: Caller, teams: CareTeams, router: Any = None) -> Any:
    """The answer, or the Aborted status, of GetHomeStatus asked by `caller`."""
    homes = {RESIDENT: enrolled().to_json()}  # enrolled in territory 55
    servicer = HomeServicer(router or Router(), None, homes, teams)  # type: ignore[arg-type]
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(servicer.GetHomeStatus(REQUEST, Context()))  # type: ignore[arg-type]
    except Aborted as exc:
        return exc
    finally:
        CURRENT_CALLER.reset(token)


def test_a_member_of_the_residents_care_team_reads_the_home_and_another_is_refused():
    teams = followed(plan_record(RESIDENT, ("ide-0107",)))
    assert home_status(NURSE, teams).enrolled
    refused = home_status(OTHER_NURSE, teams)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == "caller ide-0999 is not on this patient's care team"


def test_a_coordinator_reads_the_homes_enrolled_in_its_territory_only():
    teams = followed()
    assert home_status(Caller("coord-55", "coordinator", territory="55"), teams).enrolled
    refused = home_status(Caller("coord-54", "coordinator", territory="54"), teams)
    assert refused.details == "caller coord-54 coordinates territory 54 only"


def test_before_the_care_plans_are_read_a_care_team_caller_is_asked_to_try_again():
    unread = home_status(NURSE, CareTeams(accepts=check_care_plan))
    assert unread.code == grpc.StatusCode.UNAVAILABLE


class Elsewhere:
    """Another instance holds the home: the call is forwarded there."""

    def __init__(self) -> None:
        self.metadata: Any = None

    async def answer(self, homes: Any, key: str, context: Any, local: Any, remote: Any) -> Any:
        return await remote(self, 5.0, (("x-emeuse-forwarded", "1"),))

    def unary_unary(self, *_: Any, **__: Any) -> Any:
        async def call(request: Any, timeout: float, metadata: Any) -> Any:
            self.metadata = metadata
            return api.GetHomeStatusResponse()

        return call


@pytest.mark.parametrize("caller", [NURSE, OTHER_NURSE])
def test_a_read_forwarded_to_the_homes_owner_names_the_caller_the_owner_checks(caller):
    elsewhere = Elsewhere()
    home_status(caller, followed(), elsewhere)
    assert (ON_BEHALF_OF, caller.caller_id) in elsewhere.metadata
