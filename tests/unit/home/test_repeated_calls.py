"""Home write calls asked again after a lost answer (same request) answer as the first
time and publish nothing more: EnrollHome, UpdateContacts, PlanVisit with its visit_id.
(AcknowledgeIncident, ResolveIncident, CheckIn, CheckOut: test_grpc_actions, test_visits.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.home.v1 import home_service_pb2 as api
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.events import Event
from services.chronic.care_plan import check_care_plan
from services.home.grpc_api import HomeServicer
from services.home.processing import HOMES, PROCESSOR
from tests.unit.home.homes import AIDES, NEIGHBOUR, RESIDENT, home


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code


class Context:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class Router:
    async def answer(self, homes: Any, key: str, context: Any, local: Any, remote: Any) -> Any:
        return await local()


class Kernel:
    """The bus and the home's handlers behind it: what is published is applied at once,
    by the service's own input handlers."""

    def __init__(self) -> None:
        self.homes: dict[str, Any] = {}
        self.published: list[Any] = []
        self.now = datetime.now(UTC)

    # The Tx the handlers see.
    partition = 0

    def get(self, table: str, key: str) -> Any:
        assert table == HOMES
        return self.homes.get(key)

    def put(self, table: str, key: str, value: Any) -> None:
        self.homes[key] = value

    def publish(self, spec: Any, message: Any, **_: Any) -> None:
        """Facts the handlers publish: not inputs, kept aside."""

    async def publish_call(self, spec: Any, message: Any, **_: Any) -> EventEnvelope:
        envelope = EventEnvelope(event_id=str(uuid.uuid4()), territory=Territory.TERRITORY_MEUSE)
        self.published.append(message)
        handler = next(h for s, h in PROCESSOR.inputs.items() if s.name == spec.name)
        await handler(Event(envelope, message, RESIDENT, spec.name, 0, 0), self)  # type: ignore[arg-type]
        return envelope


class Bus:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def publish(self, spec: Any, message: Any, **options: Any) -> EventEnvelope:
        return await self.kernel.publish_call(spec, message, **options)


def servicer() -> tuple[HomeServicer, Kernel]:
    kernel = Kernel()
    return HomeServicer(
        Router(), Bus(kernel), kernel.homes, CareTeams(accepts=check_care_plan)
    ), kernel  # type: ignore[arg-type]


def call(method: Any, request: Any) -> Any:
    return asyncio.run(method(request, Context()))


def enrolment() -> api.EnrollHomeRequest:
    return api.EnrollHomeRequest(home=home(), territory="55", experiment_id="exp-home")


def contacts() -> api.UpdateContactsRequest:
    request = api.UpdateContactsRequest(resident_pseudonym=RESIDENT)
    request.contacts.add(contact_id=NEIGHBOUR, role=2).acknowledge_within.FromSeconds(300)
    return request


START = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)


def visit() -> api.PlanVisitRequest:
    request = api.PlanVisitRequest(
        resident_pseudonym=RESIDENT, aide_id=AIDES, visit_id="visit-0001"
    )
    request.planned_start.FromDatetime(START)
    request.planned_duration.FromSeconds(1800)
    request.missed_after.FromSeconds(900)
    return request


ROWS = {
    "EnrollHome": (lambda s: s.EnrollHome, enrolment),
    "UpdateContacts": (lambda s: s.UpdateContacts, contacts),
    "PlanVisit": (lambda s: s.PlanVisit, visit),
}


@pytest.mark.parametrize(("method", "request_of"), ROWS.values(), ids=ROWS.keys())
def test_a_home_write_asked_again_answers_as_the_first_time(method, request_of):
    home_service, kernel = servicer()
    if request_of is not enrolment:
        call(home_service.EnrollHome, enrolment())
    first = call(method(home_service), request_of())
    published = len(kernel.published)
    assert call(method(home_service), request_of()) == first
    assert len(kernel.published) == published


def test_enrolling_a_home_enrolled_with_another_configuration_is_refused():
    home_service, _ = servicer()
    call(home_service.EnrollHome, enrolment())
    other = enrolment()
    other.home.gir_level = 2
    with pytest.raises(Aborted) as refused:
        call(home_service.EnrollHome, other)
    assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS


def test_a_visit_id_given_to_another_visit_is_refused():
    home_service, _ = servicer()
    call(home_service.EnrollHome, enrolment())
    call(home_service.PlanVisit, visit())
    moved = visit()
    moved.planned_duration.FromSeconds(3600)
    with pytest.raises(Aborted) as refused:
        call(home_service.PlanVisit, moved)
    assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS
