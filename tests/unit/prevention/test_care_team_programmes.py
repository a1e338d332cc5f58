"""A care-team caller starts or ends a person's programme only when on the person's care
team, a coordinator with a territory only for a person enrolled there: checked before
anything is published or said of the person's enrolment."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.prevention.v1.prevention_events_pb2 import Programme, ProgrammeEndReason
from emeuse.runtime.auth import Caller
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from services.prevention.grpc_api import PreventionServicer
from tests.unit.prevention.people import enrolled
from tests.unit.prevention.test_enrol_person_calls import Aborted, Bus, Context, Router
from tests.unit.runtime.test_care_teams import followed, plan_record

NURSE = Caller("ide-0107", "care-team", member="ide-0107")
OTHER_NURSE = Caller("ide-0999", "care-team", member="ide-0999")


def end_programme(caller: Caller, teams: CareTeams, person: str, states: dict) -> Any:
    """The answer of EndProgramme asked by `caller`, or the Aborted status; and the bus."""
    bus = Bus(states)
    servicer = PreventionServicer(Router(), bus, states, None, teams)  # type: ignore[arg-type]
    request = api.EndProgrammeRequest(
        person_pseudonym=person,
        programme=Programme.PROGRAMME_PREGNANCY,
        reason=ProgrammeEndReason.PROGRAMME_END_REASON_WITHDRAWN,
    )
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(servicer.EndProgramme(request, Context()))  # type: ignore[arg-type]
    except Aborted as exc:
        return exc
    finally:
        CURRENT_CALLER.reset(token)
        assert bus.published == []  # none of these calls changes anything


def test_only_the_persons_care_team_and_its_territorys_coordinator_end_a_programme():
    person, state = enrolled()  # in Meuse (55), in no programme
    states = {person: state.to_json()}
    teams = followed(plan_record(person, ("ide-0107",)))
    # Let through, they hear that the person is not in the programme; the others only
    # that they may not.
    for caller in (NURSE, Caller("coord-55", "coordinator", territory="55")):
        passed = end_programme(caller, teams, person, states)
        assert passed.code == grpc.StatusCode.FAILED_PRECONDITION, caller
    refused = end_programme(OTHER_NURSE, teams, person, states)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == "caller ide-0999 is not on this patient's care team"
    elsewhere = end_programme(
        Caller("coord-54", "coordinator", territory="54"), teams, person, states
    )
    assert elsewhere.details == "caller coord-54 coordinates territory 54 only"
    # A person never enrolled is refused the same way, not "not enrolled".
    stranger = end_programme(NURSE, teams, random_pseudonym(), states)
    assert stranger.code == grpc.StatusCode.PERMISSION_DENIED
