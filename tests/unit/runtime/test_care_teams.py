"""Who may read a person outside chronic: the care teams every instance follows from the
care-plan topic, and the decision taken on them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, CareRole, CareTeamMember
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.runtime.auth import Caller
from emeuse.runtime.care_teams import CareTeams, CareTeamsNotReadError, check_reader
from emeuse.runtime.envelope import new_envelope, to_headers
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER

NURSE = Caller("ide-0107", "care-team", member="ide-0107")
OTHER_NURSE = Caller("ide-0999", "care-team", member="ide-0999")
COORD_55 = Caller("coord-55", "coordinator", territory="55")
COORD_54 = Caller("coord-54", "coordinator", territory="54")
COORD_ALL = Caller("coord", "coordinator")


def plan_record(
    patient: str,
    members: tuple[str, ...],
    territory: Territory.ValueType = Territory.TERRITORY_MEUSE,
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    plan = CarePlanUpdated(
        patient_pseudonym=patient,
        care_plan_id=f"cp-{random_pseudonym()[4:12]}",
        care_team=[
            CareTeamMember(member_id=m, role=CareRole.CARE_ROLE_NURSE, escalation_rank=i + 1)
            for i, m in enumerate(members)
        ],
    )
    envelope = new_envelope(
        event_type="emeuse.chronic.v1.CarePlanUpdated",
        source="emeuse/chronic",
        subject_pseudonym=patient,
        territory=territory,
        experiment_id="exp-test",
        schema_version="1",
        occurred_at=datetime.now(UTC),
    )
    return patient.encode(), plan.SerializeToString(), to_headers(envelope)


def followed(*records: tuple[bytes, Any, list[tuple[str, bytes]]]) -> CareTeams:
    """Care teams read to the topic's end from these records, as the follower does."""
    teams = CareTeams()
    teams.reloading()
    for key, value, headers in records:
        teams.apply(key, value, headers)
    teams.caught_up()
    teams.ready.set()
    return teams


def test_a_member_of_the_plan_in_force_reads_the_patient_and_another_is_refused():
    patient = random_pseudonym()
    teams = followed(plan_record(patient, ("ide-0107", "gp-0042")))
    assert teams.refusal(NURSE, patient) == ""
    assert teams.refusal(OTHER_NURSE, patient) == (
        "caller ide-0999 is not on this patient's care team"
    )


def test_the_last_plan_published_is_in_force_and_a_tombstone_removes_it():
    patient = random_pseudonym()
    teams = followed(
        plan_record(patient, ("ide-0107",)),
        plan_record(patient, ("ide-0999",)),
    )
    assert teams.refusal(OTHER_NURSE, patient) == ""
    assert "not on this patient's care team" in teams.refusal(NURSE, patient)
    teams.apply(patient.encode(), None, [])
    assert "not on this patient's care team" in teams.refusal(OTHER_NURSE, patient)


def test_a_patient_with_no_plan_is_refused_as_one_whose_team_does_not_name_the_caller():
    teams = followed(plan_record(random_pseudonym(), ("ide-0107",)))
    assert teams.refusal(NURSE, random_pseudonym()) == (
        "caller ide-0107 is not on this patient's care team"
    )


def test_a_plan_with_no_member_or_no_territory_leaves_the_plan_before_in_force():
    patient = random_pseudonym()
    key, value, headers = plan_record(patient, ("ide-0999",))
    no_territory = [(name, raw) for name, raw in headers if name != "ce_territory"]
    teams = followed(
        plan_record(patient, ("ide-0107",)),
        plan_record(patient, ()),
        (key, value, no_territory),
        (key, b"\xff not a plan", headers),
    )
    assert teams.refusal(NURSE, patient) == ""
    assert "not on this patient's care team" in teams.refusal(OTHER_NURSE, patient)


def test_a_coordinator_reads_the_people_of_its_territory_only():
    patient = random_pseudonym()
    teams = followed(plan_record(patient, ("ide-0107",), Territory.TERRITORY_MEUSE))
    # The territory the service holds the person in decides; without one, the plan's.
    assert teams.refusal(COORD_55, patient, "55") == ""
    assert teams.refusal(COORD_54, patient, "55") == "caller coord-54 coordinates territory 54 only"
    assert teams.refusal(COORD_55, patient) == ""
    assert "coordinates territory 54 only" in teams.refusal(COORD_54, patient)
    assert "coordinates territory 55 only" in teams.refusal(COORD_55, random_pseudonym())
    assert teams.refusal(COORD_ALL, random_pseudonym()) == ""


def test_operators_services_and_evaluators_keep_what_the_matrix_gives_them():
    teams = CareTeams()  # not even read yet
    for caller in (
        Caller("operator", "operator"),
        Caller("access", "service"),
        Caller("evaluation-team", "evaluator"),
        None,
    ):
        assert teams.refusal(caller, random_pseudonym()) == ""


def test_nothing_is_decided_for_a_care_team_caller_before_the_first_full_read():
    teams = CareTeams()
    teams.reloading()
    patient = random_pseudonym()
    teams.apply(*plan_record(patient, ("ide-0107",)))
    with pytest.raises(CareTeamsNotReadError, match="still being read"):
        teams.refusal(NURSE, patient)
    # A coordinator checked on the territory the service holds needs no care team.
    assert teams.refusal(COORD_55, patient, "55") == ""


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class Context:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


def checked(caller: Caller, teams: CareTeams, patient: str) -> Aborted | None:
    token = CURRENT_CALLER.set(caller)
    try:
        asyncio.run(check_reader(Context(), teams, patient))  # type: ignore[arg-type]
    except Aborted as exc:
        return exc
    finally:
        CURRENT_CALLER.reset(token)
    return None


def test_a_call_is_refused_permission_denied_or_answered_unavailable_before_the_read():
    patient = random_pseudonym()
    teams = followed(plan_record(patient, ("ide-0107",)))
    assert checked(NURSE, teams, patient) is None
    refused = checked(OTHER_NURSE, teams, patient)
    assert refused is not None and refused.code == grpc.StatusCode.PERMISSION_DENIED
    unread = checked(NURSE, CareTeams(), patient)
    assert unread is not None and unread.code == grpc.StatusCode.UNAVAILABLE
    assert "care teams are still being read" in unread.details
