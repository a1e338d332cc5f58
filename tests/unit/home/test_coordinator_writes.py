"""A coordinator with a territory enrols homes in its territory only (the territory the call
names), and changes the contacts and plans the visits of the homes enrolled there only
(the enrolment's territory): refused with the words the reads use, before anything is
published or said of the home. A coordinator without a territory and the operator pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from emeuse.home.v1 import home_service_pb2 as api
from emeuse.home.v1.home_events_pb2 import HomeConfigured, VisitPlanned
from emeuse.runtime.auth import ON_BEHALF_OF, Caller
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.envelope import CODE_OF_TERRITORY, timestamp
from emeuse.runtime.pseudonym import random_pseudonym
from services.home.configuration import record_home
from services.home.domain.home import HomeState
from services.home.grpc_api import HomeServicer
from services.home.handlers import plan_visit
from tests.unit.home.homes import AIDES, DAUGHTER, RESIDENT, enrolled, home
from tests.unit.home.test_care_team_writes import Elsewhere, as_caller
from tests.unit.home.test_grpc_actions import Context, Router
from tests.unit.runtime.test_care_teams import followed

COORD_55 = Caller("coord-55", "coordinator", territory="55")
COORD_54 = Caller("coord-54", "coordinator", territory="54")
EVERY_TERRITORY = Caller("coord-all", "coordinator")
OPERATOR = Caller("operator", "operator")


class Bus:
    """The home's handlers behind the bus: an enrolment or a planned visit is applied."""

    def __init__(self, homes: dict[str, Any]) -> None:
        self.homes = homes
        self.published: list[Any] = []

    async def publish(self, spec: Any, message: Any, **fields: Any) -> Any:
        self.published.append(message)
        resident = message.resident_pseudonym
        state = HomeState.from_json(self.homes.get(resident))
        now = datetime.now(UTC)
        if isinstance(message, HomeConfigured):
            territory = CODE_OF_TERRITORY[fields["territory"]]
            state = record_home(message, state=state, territory=territory, now=now)
            state.config.configured_by = "ev-1"  # type: ignore[union-attr]
        elif isinstance(message, VisitPlanned):
            state = plan_visit(message, state=state, now=now).state
        self.homes[resident] = state.to_json()

        class Envelope:
            event_id = "ev-1"

        return Envelope()


def a_servicer(homes: dict[str, Any]) -> tuple[HomeServicer, Bus]:
    bus = Bus(homes)
    teams: CareTeams = followed()  # read to its end, no plan: nothing to fall back on
    return HomeServicer(Router(), bus, homes, teams), bus  # type: ignore[arg-type]


def enrol(caller: Caller, territory: str, homes: dict[str, Any] | None = None) -> tuple[Any, Bus]:
    servicer, bus = a_servicer({} if homes is None else homes)
    request = api.EnrollHomeRequest(home=home(), territory=territory, experiment_id="exp-home")
    return as_caller(caller, lambda: servicer.EnrollHome(request, Context())), bus  # type: ignore[arg-type]


def test_a_coordinator_enrols_a_home_in_its_own_territory_only():
    done, bus = enrol(COORD_55, "55")
    assert done.version == 1
    assert len(bus.published) == 1
    refused, bus = enrol(COORD_54, "55")
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == "caller coord-54 coordinates territory 54 only"
    assert bus.published == []
    for caller in (EVERY_TERRITORY, OPERATOR):
        assert enrol(caller, "55")[0].version == 1


def test_a_home_enrolled_in_another_territory_is_refused_before_it_is_said_to_exist():
    homes = {RESIDENT: enrolled().to_json()}  # enrolled in Meuse (55)
    # Named in its own territory, coord-54 hears neither "already enrolled" nor the
    # enrolment's answer: the home is another territory's.
    refused, bus = enrol(COORD_54, "54", homes)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == "caller coord-54 coordinates territory 54 only"
    assert bus.published == []
    moved, _ = enrol(COORD_55, "55", {RESIDENT: enrolled(home(gir_level=2)).to_json()})
    assert moved.code == grpc.StatusCode.ALREADY_EXISTS


def update_contacts(caller: Caller, resident: str = RESIDENT) -> tuple[Any, Bus]:
    servicer, bus = a_servicer({RESIDENT: enrolled().to_json()})
    request = api.UpdateContactsRequest(
        resident_pseudonym=resident, contacts=[home().contacts[1], home().contacts[0]]
    )
    return as_caller(caller, lambda: servicer.UpdateContacts(request, Context())), bus  # type: ignore[arg-type]


def test_contacts_are_changed_by_the_coordinator_of_the_homes_territory_only():
    done, bus = update_contacts(COORD_55)
    assert done.version == 2
    assert bus.published[0].contacts[1].contact_id == DAUGHTER
    refused, bus = update_contacts(COORD_54)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == "caller coord-54 coordinates territory 54 only"
    assert bus.published == []
    # A home never enrolled (and no plan placing its resident) is refused the same way,
    # not "not enrolled": nothing is said of it.
    unknown, _ = update_contacts(COORD_55, resident=random_pseudonym())
    assert unknown.code == grpc.StatusCode.PERMISSION_DENIED
    assert update_contacts(OPERATOR)[0].version == 2


def plan(caller: Caller) -> tuple[Any, Bus]:
    servicer, bus = a_servicer({RESIDENT: enrolled().to_json()})
    request = api.PlanVisitRequest(
        resident_pseudonym=RESIDENT,
        visit_id="visit-0001",
        aide_id=AIDES,
        planned_start=timestamp(datetime.now(UTC) + timedelta(hours=2)),
        planned_duration=Duration(seconds=1800),
    )
    return as_caller(caller, lambda: servicer.PlanVisit(request, Context())), bus  # type: ignore[arg-type]


def test_visits_are_planned_by_the_coordinator_of_the_homes_territory_only():
    done, bus = plan(COORD_55)
    assert done.visit.visit_id == "visit-0001"
    assert len(bus.published) == 1
    refused, bus = plan(COORD_54)
    assert refused.details == "caller coord-54 coordinates territory 54 only"
    assert bus.published == []


def test_a_coordinators_write_forwarded_to_the_homes_owner_names_the_coordinator():
    elsewhere = Elsewhere()
    servicer = HomeServicer(elsewhere, None, {}, followed())  # type: ignore[arg-type]
    request = api.UpdateContactsRequest(resident_pseudonym=RESIDENT, contacts=home().contacts)
    as_caller(COORD_54, lambda: servicer.UpdateContacts(request, Context()))  # type: ignore[arg-type]
    assert (ON_BEHALF_OF, COORD_54.caller_id) in elsewhere.metadata
