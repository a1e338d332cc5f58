"""Who may read a person outside chronic: the care teams every instance follows from the
care-plan topic, and the decision taken on them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, CareRole, CareTeamMember
from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import Tx
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import CARE_PLAN_UPDATED, dead_letter_topic
from emeuse.runtime.auth import Caller
from emeuse.runtime.care_teams import CareTeams, CareTeamsNotReadError, check_caller
from emeuse.runtime.codec import InvalidEventError, expected_partition
from emeuse.runtime.envelope import EnvelopeError, header_map, new_envelope, to_headers
from emeuse.runtime.events import read_event
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from services.chronic.care_plan import check_care_plan
from services.chronic.processing import PROCESSOR
from tests.unit.chronic.plans import anticoagulation_plan

NURSE = Caller("ide-0107", "care-team", member="ide-0107")
OTHER_NURSE = Caller("ide-0999", "care-team", member="ide-0999")
COORD_55 = Caller("coord-55", "coordinator", territory="55")
COORD_54 = Caller("coord-54", "coordinator", territory="54")
COORD_ALL = Caller("coord", "coordinator")


@dataclass(frozen=True)
class Record:
    """A consumed record of the care-plan topic, as the follower hands it over."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int
    offset: int = 0
    topic: str = CARE_PLAN_UPDATED.name


def plan_of(patient: str, members: tuple[str, ...]) -> CarePlanUpdated:
    """A plan chronic accepts (an INR band, acknowledged within 30 min) naming `members`."""
    plan = anticoagulation_plan(patient=patient)
    plan.care_plan_id = f"cp-{random_pseudonym()[4:12]}"
    del plan.care_team[:]
    plan.care_team.extend(
        CareTeamMember(member_id=m, role=CareRole.CARE_ROLE_NURSE, escalation_rank=i + 1)
        for i, m in enumerate(members)
    )
    return plan


def plan_record(
    patient: str,
    members: tuple[str, ...],
    territory: Territory.ValueType = Territory.TERRITORY_MEUSE,
    plan: CarePlanUpdated | None = None,
) -> Record:
    """The record chronic publishes for the plan (`plan`, else one naming `members`)."""
    envelope = new_envelope(
        event_type=CARE_PLAN_UPDATED.type_name,
        source="emeuse/chronic",
        subject_pseudonym=patient,
        territory=territory,
        experiment_id="exp-test",
        schema_version=CARE_PLAN_UPDATED.schema_version,
        occurred_at=datetime.now(UTC),
    )
    key = patient.encode()
    return Record(
        key,
        (plan or plan_of(patient, members)).SerializeToString(),
        to_headers(envelope),
        expected_partition(key, CARE_PLAN_UPDATED.partitions),
    )


def followed(*records: Any) -> CareTeams:
    """Care teams read to the topic's end from these records, as the follower does, with
    chronic's check of a plan as the services give it."""
    teams = CareTeams(accepts=check_care_plan)
    teams.reloading()
    for record in records:
        teams.apply(record)
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
    first = plan_record(patient, ("ide-0107",))
    teams = followed(first, plan_record(patient, ("ide-0999",)))
    assert teams.refusal(OTHER_NURSE, patient) == ""
    assert "not on this patient's care team" in teams.refusal(NURSE, patient)
    teams.apply(replace(first, value=None, headers=[]))
    assert "not on this patient's care team" in teams.refusal(OTHER_NURSE, patient)


def test_a_patient_with_no_plan_is_refused_as_one_whose_team_does_not_name_the_caller():
    teams = followed(plan_record(random_pseudonym(), ("ide-0107",)))
    assert teams.refusal(NURSE, random_pseudonym()) == (
        "caller ide-0107 is not on this patient's care team"
    )


def refused_plans(patient: str) -> dict[str, Record]:
    """Plans naming ide-0999 that chronic dead-letters, each for its reason."""
    good = plan_record(patient, ("ide-0999",))
    reversed_band = plan_of(patient, ("ide-0999",))
    reversed_band.thresholds[0].low, reversed_band.thresholds[0].high = 3.0, 2.0
    no_delay = plan_of(patient, ("ide-0999",))
    no_delay.ClearField("acknowledge_within")
    identifying = plan_of(patient, ("ide-0999",))
    identifying.care_plan_id = "12 rue des Lilas 55100 Verdun"
    by_mail = plan_of(patient, ("jean.dupont@example.org",))
    other_patient = plan_of(random_pseudonym(), ("ide-0999",))
    return {
        "thresholds out of order": plan_record(patient, (), plan=reversed_band),
        "no acknowledge_within": plan_record(patient, (), plan=no_delay),
        "no care-team member": plan_record(patient, ()),
        "an address as care_plan_id": plan_record(patient, (), plan=identifying),
        "an e-mail as member_id": plan_record(patient, (), plan=by_mail),
        "keyed by another patient": plan_record(patient, (), plan=other_patient),
        "no territory": replace(
            good, headers=[(n, v) for n, v in good.headers if n != "ce_territory"]
        ),
        "not on the key's partition": replace(
            good, partition=(good.partition + 1) % CARE_PLAN_UPDATED.partitions
        ),
        "not a plan": replace(good, value=b"\xff not a plan"),
    }


@pytest.mark.parametrize("reason", list(refused_plans(random_pseudonym())))
def test_a_plan_chronic_refuses_leaves_the_plan_before_in_force(reason):
    patient = random_pseudonym()
    teams = followed(plan_record(patient, ("ide-0107",)), refused_plans(patient)[reason])
    assert teams.refusal(NURSE, patient) == ""
    assert "not on this patient's care team" in teams.refusal(OTHER_NURSE, patient)


def chronic_records(record: Record) -> bool:
    """Whether chronic makes the plan its plan in force: the record read as its kernel
    reads every record, then given to its care-plan handler (the kernel sets aside a
    record either refuses)."""
    tx = Tx(
        0,
        Origin("chronic", "emeuse/chronic", "exp-test"),
        dead_letter_topic("chronic"),
        lambda table, key: None,
        lambda table, key: 0,
    )
    try:
        event = read_event(CARE_PLAN_UPDATED, record, header_map(record.headers))
        asyncio.run(PROCESSOR.inputs[CARE_PLAN_UPDATED](event, tx))
    except (InvalidEventError, EnvelopeError):
        return False
    return bool(tx.writes)


@pytest.mark.parametrize("reason", list(refused_plans(random_pseudonym())))
def test_chronic_refuses_each_of_these_plans_too(reason):
    patient = random_pseudonym()
    assert not chronic_records(refused_plans(patient)[reason])
    assert chronic_records(plan_record(patient, ("ide-0999",)))


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
    teams = CareTeams(accepts=check_care_plan)  # not even read yet
    for caller in (
        Caller("operator", "operator"),
        Caller("access", "service"),
        Caller("evaluation-team", "evaluator"),
        None,
    ):
        assert teams.refusal(caller, random_pseudonym()) == ""


def test_nothing_is_decided_for_a_care_team_caller_before_the_first_full_read():
    teams = CareTeams(accepts=check_care_plan)
    teams.reloading()
    patient = random_pseudonym()
    teams.apply(plan_record(patient, ("ide-0107",)))
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
        asyncio.run(check_caller(Context(), teams, patient))  # type: ignore[arg-type]
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
    unread = checked(NURSE, CareTeams(accepts=check_care_plan), patient)
    assert unread is not None and unread.code == grpc.StatusCode.UNAVAILABLE
    assert "care teams are still being read" in unread.details
