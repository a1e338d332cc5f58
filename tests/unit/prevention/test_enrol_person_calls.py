"""EnrollPerson is an upsert: the same enrolment asked again (a lost answer) answers as
the first time and publishes nothing; other data (a new age band) replaces the profile."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.events import Event
from emeuse.runtime.pseudonym import random_pseudonym
from services.chronic.care_plan import check_care_plan
from services.prevention.domain.person import PersonState
from services.prevention.grpc_api import PreventionServicer
from services.prevention.processing import applied_key, enrol
from tests.unit.prevention.people import DELAYS, NOW, enrolment


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class Context:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class Router:
    """This instance holds every person."""

    async def answer(self, table: Any, key: str, context: Any, local: Any, remote: Any) -> Any:
        return await local()


class Bus:
    """The person's handler behind the bus: an enrolment published is applied at once,
    as the kernel applies it (the event id remembered)."""

    def __init__(self, states: dict[str, Any]) -> None:
        self.states = states
        self.published: list[Any] = []

    async def publish(self, spec: Any, message: Any, **fields: Any) -> EventEnvelope:
        experiment = fields.get("experiment_id") or "emeuse-platform"
        envelope = EventEnvelope(event_id=str(uuid.uuid4()), experiment_id=experiment)
        self.published.append(message)
        person = message.person_pseudonym
        state = PersonState.from_json(self.states.get(person))
        event = Event(envelope, message, person, spec.name, 0, len(self.published))
        outcome = enrol(event, state, NOW, delays=DELAYS)
        outcome.state.remember(applied_key(envelope.event_id))
        self.states[person] = outcome.state.to_json()
        return envelope


def enrol_request(
    person: str, band: tuple[int, int], experiment: str = "exp-prevention"
) -> api.EnrollPersonRequest:
    return api.EnrollPersonRequest(person=enrolment(person, band=band), experiment_id=experiment)


def call(servicer: PreventionServicer, request: api.EnrollPersonRequest) -> Any:
    return asyncio.run(servicer.EnrollPerson(request, Context()))  # type: ignore[arg-type]


def test_the_same_enrolment_asked_again_answers_as_the_first_time():
    states: dict[str, Any] = {}
    bus = Bus(states)
    servicer = PreventionServicer(Router(), bus, states, None, CareTeams(accepts=check_care_plan))  # type: ignore[arg-type]
    person = random_pseudonym()
    request = enrol_request(person, (50, 54))
    first = call(servicer, request)
    again = call(servicer, request)
    assert again == first
    assert first.scheduled  # the age band's reminders
    assert len(bus.published) == 1


def test_enrolling_an_enrolled_person_with_a_new_age_band_replaces_the_profile():
    states: dict[str, Any] = {}
    bus = Bus(states)
    servicer = PreventionServicer(Router(), bus, states, None, CareTeams(accepts=check_care_plan))  # type: ignore[arg-type]
    person = random_pseudonym()
    first = call(servicer, enrol_request(person, (45, 49)))
    older = call(servicer, enrol_request(person, (50, 54)))
    assert older.event_id != first.event_id
    profile = PersonState.from_json(states[person]).profile
    assert profile is not None and (profile.age_from, profile.age_to) == (50, 54)
    assert profile.enrolled_by == older.event_id
    assert len(bus.published) == 2


def test_the_same_enrolment_in_another_experiment_moves_the_person_to_it():
    """What the timers send and an opt-out follow the enrolment's experiment: enrolled
    again in another, the person moves, so the enrolment is published."""
    states: dict[str, Any] = {}
    bus = Bus(states)
    servicer = PreventionServicer(Router(), bus, states, None, CareTeams(accepts=check_care_plan))  # type: ignore[arg-type]
    person = random_pseudonym()
    first = call(servicer, enrol_request(person, (50, 54)))
    moved = call(servicer, enrol_request(person, (50, 54), experiment="prevention-meuse"))
    assert moved.event_id != first.event_id
    profile = PersonState.from_json(states[person]).profile
    assert profile is not None and profile.experiment == "prevention-meuse"
    assert len(bus.published) == 2
