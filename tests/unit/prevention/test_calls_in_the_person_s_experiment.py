"""Calls that name no experiment (preferences, starting and ending a programme) are
published in the experiment the person is enrolled in, as an opt-out is: what they schedule
or cancel is counted with the person's other events, not in the service's own experiment."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.prevention.v1.prevention_events_pb2 import (
    PreferencesUpdated,
    Programme,
    ProgrammeEndReason,
    ProgrammeStarted,
)
from emeuse.runtime.auth import Caller
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.events import Event
from emeuse.runtime.roles import CURRENT_CALLER
from services.prevention.domain.person import PersonState
from services.prevention.grpc_api import PreventionServicer
from services.prevention.processing import (
    applied_key,
    end_programme,
    start_programme,
    update_preferences,
)
from tests.unit.prevention.people import enrolled
from tests.unit.prevention.test_enrol_person_calls import Context, Router
from tests.unit.runtime.test_care_teams import followed

OPERATOR = Caller("operator", "operator")
SERVICE_DEFAULT = "emeuse-platform"


class Bus:
    """The person's handlers behind the bus, applied at once; each event's experiment as
    the gRPC edge stamps it (the service's own when the call gives none)."""

    def __init__(self, states: dict[str, Any]) -> None:
        self.states = states
        self.experiments: list[tuple[str, str]] = []

    async def publish(self, spec: Any, message: Any, **fields: Any) -> EventEnvelope:
        experiment = fields.get("experiment_id") or SERVICE_DEFAULT
        self.experiments.append((type(message).__name__, experiment))
        envelope = EventEnvelope(event_id=str(uuid.uuid4()), experiment_id=experiment)
        person = message.person_pseudonym
        state = PersonState.from_json(self.states.get(person))
        event = Event(envelope, message, person, spec.name, 0, len(self.experiments))
        now = datetime.now(UTC)  # the servicer checks a due date against the wall clock
        if isinstance(message, PreferencesUpdated):
            outcome = update_preferences(event, state, now)
        elif isinstance(message, ProgrammeStarted):
            outcome = start_programme(event, state, now)
        else:
            outcome = end_programme(event, state, now)
        outcome.state.remember(applied_key(envelope.event_id))
        self.states[person] = outcome.state.to_json()
        return envelope


def call(servicer: PreventionServicer, method: str, request: Any) -> Any:
    token = CURRENT_CALLER.set(OPERATOR)
    try:
        return asyncio.run(getattr(servicer, method)(request, Context()))
    finally:
        CURRENT_CALLER.reset(token)


def test_preferences_and_a_programme_are_published_in_the_person_s_experiment():
    person, state = enrolled(band=(25, 29))
    assert state.profile is not None
    state.profile.experiment = "prevention-meuse"
    states = {person: state.to_json()}
    bus = Bus(states)
    servicer = PreventionServicer(Router(), bus, states, None, followed())  # type: ignore[arg-type]
    call(
        servicer,
        "UpdatePreferences",
        api.UpdatePreferencesRequest(person_pseudonym=person, allowed_channels=["sms"]),
    )
    call(
        servicer,
        "StartProgramme",
        api.StartProgrammeRequest(
            person_pseudonym=person,
            programme=Programme.PROGRAMME_PREGNANCY,
            expected_due_date=timestamp(datetime.now(UTC) + timedelta(days=150)),
        ),
    )
    call(
        servicer,
        "EndProgramme",
        api.EndProgrammeRequest(
            person_pseudonym=person,
            programme=Programme.PROGRAMME_PREGNANCY,
            reason=ProgrammeEndReason.PROGRAMME_END_REASON_WITHDRAWN,
        ),
    )
    assert bus.experiments == [
        ("PreferencesUpdated", "prevention-meuse"),
        ("ProgrammeStarted", "prevention-meuse"),
        ("ProgrammeEnded", "prevention-meuse"),
    ]
