"""RecordPreventionAction: a screening done or a dose given, recorded for an enrolled person
by the person's care team, the coordinator of the person's territory or a partner's back end
(a lab, a pharmacy), published in the person's territory and experiment; anyone else, or an
action that answers no reminder, is refused before anything is published."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.prevention.v1.prevention_events_pb2 import (
    PreventionActionKind,
    PreventionActionRecorded,
)
from emeuse.registry import PREVENTION_ACTION_RECORDED, partner_publishable
from emeuse.runtime.auth import Caller
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER, refusal
from services.gateway.domain_rules import RuleBroken, check_domain_rules
from services.prevention.grpc_api import PreventionServicer
from tests.unit.prevention.people import enrolled
from tests.unit.prevention.test_enrol_person_calls import Aborted, Context, Router
from tests.unit.runtime.test_care_teams import followed, plan_record

METHOD = "/emeuse.prevention.v1.PreventionService/RecordPreventionAction"
SCREENING_DONE = PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE
VACCINE_GIVEN = PreventionActionKind.PREVENTION_ACTION_KIND_VACCINE_GIVEN
NURSE = Caller("ide-0107", "care-team", member="ide-0107")
LAB = Caller("labo-verdun", "partner")


class Bus:
    """Takes what is published: nothing in prevention applies an action."""

    def __init__(self) -> None:
        self.published: list[tuple[Any, Any, dict[str, Any]]] = []

    async def publish(self, spec: Any, message: Any, **fields: Any) -> EventEnvelope:
        self.published.append((spec, message, fields))
        return EventEnvelope(event_id=str(uuid.uuid4()))


def record(
    caller: Caller, person: str, states: dict[str, Any], teams: CareTeams, **fields: Any
) -> tuple[Any, Bus]:
    """RecordPreventionAction asked by `caller`: its answer or the Aborted status, and the bus."""
    bus = Bus()
    servicer = PreventionServicer(Router(), bus, states, None, teams)  # type: ignore[arg-type]
    request = api.RecordPreventionActionRequest(
        person_pseudonym=person,
        programme=fields.pop("programme", "screening.colorectal"),
        kind=fields.pop("kind", SCREENING_DONE),
        **fields,
    )
    token = CURRENT_CALLER.set(caller)
    try:
        call = servicer.RecordPreventionAction(request, Context())  # type: ignore[arg-type]
        return asyncio.run(call), bus
    except Aborted as exc:
        return exc, bus
    finally:
        CURRENT_CALLER.reset(token)


@pytest.fixture
def meuse_person() -> tuple[str, dict[str, Any], CareTeams]:
    person, state = enrolled(band=(50, 54))  # in Meuse (55)
    return person, {person: state.to_json()}, followed(plan_record(person, ("ide-0107",)))


def test_the_care_team_and_the_territorys_coordinator_record_an_action(meuse_person):
    person, states, teams = meuse_person
    for caller in (NURSE, Caller("coord-55", "coordinator", territory="55")):
        answer, bus = record(caller, person, states, teams, action_id="kit-55-0001")
        [(spec, published, fields)] = bus.published
        assert spec is PREVENTION_ACTION_RECORDED
        assert published == answer.action
        assert published.action_id == "kit-55-0001"
        assert published.person_pseudonym == person
        assert published.programme == "screening.colorectal"
        assert fields["key"] == person
        assert fields["territory"] == Territory.TERRITORY_MEUSE
        assert published.acted_at.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)


def test_without_an_id_each_call_is_a_new_action(meuse_person):
    person, states, teams = meuse_person
    first, _ = record(NURSE, person, states, teams)
    second, _ = record(NURSE, person, states, teams)
    assert first.action.action_id and first.action.action_id != second.action.action_id


def test_others_are_refused_before_anything_is_published(meuse_person):
    person, states, teams = meuse_person
    refused, bus = record(Caller("ide-0999", "care-team", member="ide-0999"), person, states, teams)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == "caller ide-0999 is not on this patient's care team"
    elsewhere, bus_54 = record(
        Caller("coord-54", "coordinator", territory="54"), person, states, teams
    )
    assert elsewhere.details == "caller coord-54 coordinates territory 54 only"
    assert bus.published == bus_54.published == []
    # The role matrix, applied by the guard before the servicer: a partner reports an action
    # through the gateway, where its consent is checked; an evaluator reads figures.
    assert refusal(LAB, METHOD) == f"role partner may not call {METHOD}"
    assert refusal(Caller("unit-eval", "evaluator"), METHOD) == (
        f"role evaluator may not call {METHOD}"
    )
    assert refusal(NURSE, METHOD) == ""


def test_a_person_not_enrolled_is_refused_by_name_of_the_precondition():
    teams = followed()
    # A coordinator of every territory: one of a territory is refused first (no territory
    # is known for a person never enrolled), and learns nothing of who is.
    refused, bus = record(Caller("coord-all", "coordinator"), random_pseudonym(), {}, teams)
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "not enrolled" in refused.details
    assert bus.published == []


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"programme": "pregnancy"}, "programme must be a reminder series"),
        ({"programme": "vaccination.hpv", "kind": SCREENING_DONE}, "answered by VACCINE_GIVEN"),
        ({"programme": "screening.breast", "kind": VACCINE_GIVEN}, "answered by SCREENING_DONE"),
        ({"kind": PreventionActionKind.PREVENTION_ACTION_KIND_UNSPECIFIED}, "answered by"),
        (
            {"acted_at": timestamp(datetime.now(UTC) + timedelta(days=2))},
            "acted_at is in the future",
        ),
        ({"action_id": "Kit of Ms Martin"}, "action_id must be a code"),
    ],
)
def test_an_action_that_answers_no_reminder_is_refused(meuse_person, fields, says):
    person, states, teams = meuse_person
    refused, bus = record(NURSE, person, states, teams, **fields)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert says in refused.details
    assert bus.published == []


def test_a_partner_may_publish_actions_and_the_gateway_applies_the_same_rule():
    assert partner_publishable(PREVENTION_ACTION_RECORDED)
    good = PreventionActionRecorded(
        action_id="dose-1",
        person_pseudonym=random_pseudonym(),
        programme="vaccination.hpv",
        kind=VACCINE_GIVEN,
        acted_at=timestamp(datetime.now(UTC)),
    )
    check_domain_rules(PREVENTION_ACTION_RECORDED, good)
    wrong = PreventionActionRecorded()
    wrong.CopyFrom(good)
    wrong.kind = SCREENING_DONE
    with pytest.raises(RuleBroken) as refused:
        check_domain_rules(PREVENTION_ACTION_RECORDED, wrong)
    assert refused.value.rule == "prevention:kind"
