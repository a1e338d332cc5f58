"""A coordinator with a territory enrols people in its territory only (the territory the
call names), and re-enrols, changes the preferences of and opts out only the people
enrolled there (the enrolment's territory): refused with the words the reads use, before
anything is published or said of the person. The operator passes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.prevention.v1.prevention_events_pb2 import (
    OptOutRecorded,
    PersonEnrolled,
    PreferencesUpdated,
)
from emeuse.runtime.auth import Caller
from emeuse.runtime.events import Event
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from services.prevention.domain.person import PersonState
from services.prevention.grpc_api import PreventionServicer
from services.prevention.processing import applied_key, enrol, opt_out, update_preferences
from tests.unit.prevention.people import DELAYS, NOW, enrolled, enrolment
from tests.unit.prevention.test_enrol_person_calls import Aborted, Context, Router
from tests.unit.runtime.test_care_teams import followed

COORD_55 = Caller("coord-55", "coordinator", territory="55")
COORD_54 = Caller("coord-54", "coordinator", territory="54")
OPERATOR = Caller("operator", "operator")
ELSEWHERE = "caller coord-54 coordinates territory 54 only"


class Bus:
    """The person's handlers behind the bus: what is published is applied at once."""

    def __init__(self, states: dict[str, Any]) -> None:
        self.states = states
        self.published: list[Any] = []

    async def publish(self, spec: Any, message: Any, **_: Any) -> EventEnvelope:
        envelope = EventEnvelope(event_id=str(uuid.uuid4()))
        self.published.append(message)
        person = message.person_pseudonym
        state = PersonState.from_json(self.states.get(person))
        event = Event(envelope, message, person, spec.name, 0, len(self.published))
        if isinstance(message, PersonEnrolled):
            outcome = enrol(event, state, NOW, delays=DELAYS)
        elif isinstance(message, PreferencesUpdated):
            outcome = update_preferences(event, state, NOW)
        else:
            assert isinstance(message, OptOutRecorded)
            outcome = opt_out(event, state, NOW)
        outcome.state.remember(applied_key(envelope.event_id))
        self.states[person] = outcome.state.to_json()
        return envelope


def ask(caller: Caller, method: str, request: Any, states: dict[str, Any]) -> tuple[Any, Bus]:
    """The answer of `method` asked by `caller` (or the Aborted status), and the bus."""
    bus = Bus(states)
    servicer = PreventionServicer(Router(), bus, states, None, followed())  # type: ignore[arg-type]
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(getattr(servicer, method)(request, Context())), bus
    except Aborted as exc:
        return exc, bus
    finally:
        CURRENT_CALLER.reset(token)


def enrol_in(person: str, territory: int) -> api.EnrollPersonRequest:
    return api.EnrollPersonRequest(
        person=enrolment(person, territory=territory), experiment_id="exp-prevention"
    )


def test_a_coordinator_enrols_people_in_its_own_territory_only():
    person = random_pseudonym()
    done, bus = ask(COORD_55, "EnrollPerson", enrol_in(person, Territory.TERRITORY_MEUSE), {})
    assert done.event_id and len(bus.published) == 1
    refused, bus = ask(COORD_54, "EnrollPerson", enrol_in(person, Territory.TERRITORY_MEUSE), {})
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == ELSEWHERE
    assert bus.published == []


def test_a_person_enrolled_elsewhere_is_not_moved_into_the_coordinators_territory():
    person, state = enrolled()  # in Meuse (55)
    request = enrol_in(person, Territory.TERRITORY_MEURTHE_ET_MOSELLE)
    refused, bus = ask(COORD_54, "EnrollPerson", request, {person: state.to_json()})
    assert refused.details == ELSEWHERE
    assert bus.published == []
    moved, bus = ask(OPERATOR, "EnrollPerson", request, {person: state.to_json()})
    assert moved.event_id and len(bus.published) == 1


def test_preferences_are_changed_by_the_coordinator_of_the_persons_territory_only():
    person, state = enrolled()
    request = api.UpdatePreferencesRequest(person_pseudonym=person, allowed_channels=["sms"])
    done, bus = ask(COORD_55, "UpdatePreferences", request, {person: state.to_json()})
    assert list(done.profile.allowed_channels) == ["sms"]
    refused, bus = ask(COORD_54, "UpdatePreferences", request, {person: state.to_json()})
    assert refused.details == ELSEWHERE
    assert bus.published == []
    # Never enrolled, no plan placing them: refused the same way, not "not enrolled".
    stranger = api.UpdatePreferencesRequest(
        person_pseudonym=random_pseudonym(), allowed_channels=["sms"]
    )
    unknown, _ = ask(COORD_55, "UpdatePreferences", stranger, {})
    assert unknown.code == grpc.StatusCode.PERMISSION_DENIED


def test_an_opt_out_is_recorded_by_the_coordinator_of_the_persons_territory_only():
    person, state = enrolled()
    request = api.OptOutRequest(
        person_pseudonym=person,
        # The territory named matters only for a person never enrolled: the enrolment's rules.
        territory=Territory.TERRITORY_MEURTHE_ET_MOSELLE,
    )
    refused, bus = ask(COORD_54, "OptOut", request, {person: state.to_json()})
    assert refused.details == ELSEWHERE
    assert bus.published == []
    done, bus = ask(COORD_55, "OptOut", request, {person: state.to_json()})
    assert not isinstance(done, Aborted)
    assert len(bus.published) == 1


def test_a_person_never_enrolled_is_opted_out_in_the_territory_the_call_names():
    stranger = random_pseudonym()
    request = api.OptOutRequest(person_pseudonym=stranger, territory=Territory.TERRITORY_MEUSE)
    refused, bus = ask(COORD_54, "OptOut", request, {})
    assert refused.details == ELSEWHERE
    assert bus.published == []
    done, bus = ask(COORD_55, "OptOut", request, {})
    assert not isinstance(done, Aborted)
    assert len(bus.published) == 1
