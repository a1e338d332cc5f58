"""AcknowledgeIncident and ResolveIncident answer OK only when the incident holds what was
asked: a call that changes nothing (the incident was cleared, resolved otherwise, taken
by someone else) is FAILED_PRECONDITION, never a silent OK."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from emeuse.home.v1 import home_service_pb2 as api
from emeuse.home.v1.home_events_pb2 import IncidentAction, IncidentOutcome
from emeuse.runtime.care_teams import CareTeams
from services.chronic.care_plan import check_care_plan
from services.home.domain.home import HomeState
from services.home.grpc_api import HomeServicer
from services.home.incidents import apply_action
from tests.unit.home.homes import (
    DAUGHTER,
    NEIGHBOUR,
    RESIDENT,
    action,
    at,
    enrolled,
    fall,
    feed,
    motion,
    raised,
    run,
)

SENT_TO_HOSPITAL = IncidentOutcome.INCIDENT_OUTCOME_SENT_TO_HOSPITAL
HANDLED_AT_HOME = IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class Context:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class Router:
    """This instance holds every home."""

    async def answer(self, homes: Any, key: str, context: Any, local: Any, remote: Any) -> Any:
        return await local()


class Bus:
    """The home's agent behind the bus: an action published is applied to the table."""

    def __init__(self, homes: dict[str, Any]) -> None:
        self.homes = homes
        self.published: list[Any] = []

    async def publish(self, spec: Any, message: Any, **_: Any) -> Any:
        self.published.append(message)
        state = HomeState.from_json(self.homes[RESIDENT])
        outcome = apply_action(message, state=state, now=datetime.now(UTC))
        self.homes[RESIDENT] = outcome.state.to_json()

        class Envelope:
            event_id = "ev-1"

        return Envelope()


def servicer(state: HomeState) -> tuple[HomeServicer, Bus]:
    homes = {RESIDENT: state.to_json()}
    bus = Bus(homes)
    return HomeServicer(Router(), bus, homes, CareTeams(accepts=check_care_plan)), bus  # type: ignore[arg-type]


def resolve(
    service: HomeServicer, incident_id: str, contact: str, outcome: int, injury: bool = False
) -> api.Incident:
    request = api.ResolveIncidentRequest(
        resident_pseudonym=RESIDENT,
        incident_id=incident_id,
        contact_id=contact,
        outcome=outcome,  # type: ignore[arg-type]
        injury=injury,
    )
    return asyncio.run(service.ResolveIncident(request, Context())).incident  # type: ignore[arg-type]


def acknowledge(service: HomeServicer, incident_id: str, contact: str) -> api.Incident:
    request = api.AcknowledgeIncidentRequest(
        resident_pseudonym=RESIDENT, incident_id=incident_id, contact_id=contact
    )
    return asyncio.run(service.AcknowledgeIncident(request, Context())).incident  # type: ignore[arg-type]


def cleared_inactivity() -> tuple[HomeState, str]:
    """Inactivity raised at 9:05, cleared by the service when she moved at 9:20."""
    state, _ = feed(enrolled(), motion(at("07:05")))
    state, outcomes = run(state, at("09:05"), at("09:06"))
    [incident] = raised(outcomes)
    state, _ = feed(state, motion(at("09:20")))
    assert not state.incidents[incident.incident_id].is_open
    return state, incident.incident_id


def resolved_fall(outcome: int, injury: bool) -> tuple[HomeState, str]:
    state, outcomes = feed(enrolled(), fall(at("10:00")))
    [incident] = raised(outcomes)
    done = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_RESOLVE,
            incident_id=incident.incident_id,
            contact_id=DAUGHTER,
            outcome=outcome,
            injury=injury,
        ),
        state=state,
        now=at("10:05"),
    )
    return done.state, incident.incident_id


def test_resolving_an_incident_the_service_cleared_is_refused_not_answered_ok():
    state, incident_id = cleared_inactivity()
    service, bus = servicer(state)
    with pytest.raises(Aborted) as refused:
        resolve(service, incident_id, DAUGHTER, SENT_TO_HOSPITAL, injury=True)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "CLEARED" in refused.value.details
    assert bus.published == []


def test_resolving_a_resolved_incident_with_another_outcome_is_refused():
    state, incident_id = resolved_fall(HANDLED_AT_HOME, injury=False)
    service, _ = servicer(state)
    with pytest.raises(Aborted) as refused:
        resolve(service, incident_id, DAUGHTER, SENT_TO_HOSPITAL, injury=True)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(Aborted) as by_another:
        resolve(service, incident_id, NEIGHBOUR, HANDLED_AT_HOME)
    assert by_another.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_resolving_again_with_the_same_outcome_is_idempotent():
    state, incident_id = resolved_fall(SENT_TO_HOSPITAL, injury=True)
    service, bus = servicer(state)
    again = resolve(service, incident_id, DAUGHTER, SENT_TO_HOSPITAL, injury=True)
    assert (again.status, again.outcome, again.injury) == (
        api.INCIDENT_STATUS_RESOLVED,
        SENT_TO_HOSPITAL,
        True,
    )
    assert bus.published == []


def test_acknowledging_a_resolved_incident_is_refused():
    state, incident_id = cleared_inactivity()
    service, bus = servicer(state)
    with pytest.raises(Aborted) as refused:
        acknowledge(service, incident_id, DAUGHTER)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert bus.published == []


def test_acknowledging_an_incident_another_contact_took_is_refused_and_again_is_ok():
    state, outcomes = feed(enrolled(), fall(at("10:00")))
    [incident] = raised(outcomes)
    service, bus = servicer(state)
    taken = acknowledge(service, incident.incident_id, DAUGHTER)
    assert (taken.status, taken.acknowledged_by) == (api.INCIDENT_STATUS_ACKNOWLEDGED, DAUGHTER)
    assert len(bus.published) == 1
    assert acknowledge(service, incident.incident_id, DAUGHTER).acknowledged_by == DAUGHTER
    with pytest.raises(Aborted) as refused:
        acknowledge(service, incident.incident_id, NEIGHBOUR)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert len(bus.published) == 1
    # The contact who took it resolves it.
    done = resolve(service, incident.incident_id, DAUGHTER, HANDLED_AT_HOME)
    assert (done.status, done.resolved_by) == (api.INCIDENT_STATUS_RESOLVED, DAUGHTER)
