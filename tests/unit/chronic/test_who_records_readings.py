"""A care-team member records readings only for the patients whose plan in force names it,
a coordinator with a territory only for its territory's patients and in its territory;
a member only in its patient's territory (INVALID_ARGUMENT otherwise); partners, services
and the operator send readings for any patient. A refused call publishes
nothing, and a FHIR Bundle with one refused Observation is refused whole, naming it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.runtime.auth import ON_BEHALF_OF, Caller
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from services.chronic.grpc_api import ChronicServicer
from tests.unit.chronic.plans import INR, NURSE
from tests.unit.chronic.readings import reading
from tests.unit.chronic.test_coordinator_writes import (
    COORD_54,
    COORD_55,
    ELSEWHERE,
    OPERATOR,
    Aborted,
    Bus,
    Context,
    Here,
    in_55,
)
from tests.unit.chronic.test_fhir import glucose_observation

ON_THE_TEAM = Caller("ide-ehpad-0107", "care-team", member=NURSE)
NOT_ON_IT = Caller("ide-0999", "care-team", member="ide-0999")
NOT_ON_THE_TEAM = "caller ide-0999 is not on this patient's care team"
BULK_SENDERS = (
    Caller("partner-glucomind", "partner"),
    Caller("chronic", "service"),
    OPERATOR,
)


def recorded(
    caller: Caller, request: Any, plans: dict[str, Any], router: Any = None
) -> tuple[Any, Bus]:
    """The answer of the call made by `caller` (or the Aborted status), and the bus."""
    bus = Bus(plans)
    servicer = ChronicServicer(router or Here(), bus, plans, {})  # type: ignore[arg-type]
    single = isinstance(request, api.RecordReadingRequest)
    call = servicer.RecordReading if single else servicer.IngestFhirObservation
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(call(request, Context())), bus  # type: ignore[arg-type]
    except Aborted as exc:
        return exc, bus
    finally:
        CURRENT_CALLER.reset(token)


def inr_of(patient: str, territory: str = "55") -> api.RecordReadingRequest:
    measured = datetime.now(UTC) - timedelta(minutes=5)
    return api.RecordReadingRequest(
        reading=reading(INR, 2.4, f"r-{patient[-6:]}", measured, patient=patient),
        territory=territory,
        experiment_id="exp-telesurv",
    )


def test_a_member_of_the_patients_care_team_records_a_reading_and_another_is_refused():
    patient = random_pseudonym()
    done, bus = recorded(ON_THE_TEAM, inr_of(patient), in_55(patient))
    assert done.event_id and len(bus.published) == 1
    refused, bus = recorded(NOT_ON_IT, inr_of(patient), in_55(patient))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == NOT_ON_THE_TEAM
    assert bus.published == []


def test_a_coordinator_records_readings_of_its_territorys_patients_in_its_territory_only():
    patient = random_pseudonym()
    done, bus = recorded(COORD_55, inr_of(patient), in_55(patient))
    assert done.event_id and len(bus.published) == 1
    # The patient's plan is in 55: coord-54 is refused, naming 54 or 55 in the call.
    for territory in ("54", "55"):
        refused, bus = recorded(COORD_54, inr_of(patient, territory), in_55(patient))
        assert (refused.code, refused.details) == (grpc.StatusCode.PERMISSION_DENIED, ELSEWHERE)
        assert bus.published == []
    # Nor does coord-55 publish its patient's reading as another territory's.
    refused, bus = recorded(COORD_55, inr_of(patient, "54"), in_55(patient))
    assert refused.details == "caller coord-55 coordinates territory 55 only"
    assert bus.published == []


def test_a_patient_with_no_plan_is_refused_to_care_team_and_coordinator_callers_alike():
    stranger = random_pseudonym()
    assert recorded(ON_THE_TEAM, inr_of(stranger), {})[0].details == (
        "caller ide-ehpad-0107 is not on this patient's care team"
    )
    assert recorded(COORD_55, inr_of(stranger), {})[0].details == (
        "caller coord-55 coordinates territory 55 only"
    )


def test_partners_services_and_the_operator_keep_sending_readings_for_any_patient():
    stranger = random_pseudonym()  # no plan here: chronic dead-letters it, as before
    for caller in BULK_SENDERS:
        done, bus = recorded(caller, inr_of(stranger), {})
        assert done.event_id and len(bus.published) == 1, caller


def bundle(*patients: str) -> api.IngestFhirObservationRequest:
    entries = []
    for index, patient in enumerate(patients):
        observation = glucose_observation(
            id=f"glu-{index}",
            identifier=[{"system": "urn:oid:1.2.250.1.999.1", "value": f"GM-{index}"}],
            subject={"reference": f"Patient/{patient}"},
        )
        entries.append({"resource": observation})
    return api.IngestFhirObservationRequest(
        fhir_json=json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}),
        territory="55",
        experiment_id="exp-telesurv",
    )


def test_a_bundle_with_one_observation_of_another_patient_is_refused_whole_naming_it():
    ours, theirs = random_pseudonym(), random_pseudonym()
    plans = in_55(ours)
    done, bus = recorded(ON_THE_TEAM, bundle(ours, ours), plans)
    assert len(done.event_ids) == 2 and len(bus.published) == 2
    refused, bus = recorded(ON_THE_TEAM, bundle(ours, theirs, ours), plans)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == (
        "Bundle.entry[1]: caller ide-ehpad-0107 is not on this patient's care team; "
        "no Observation of the call was recorded"
    )
    assert bus.published == []
    # A partner's bundle is taken as before, whoever the patients.
    done, bus = recorded(BULK_SENDERS[0], bundle(ours, theirs), plans)
    assert len(done.event_ids) == 2 and len(bus.published) == 2


class Owner:
    """Another instance holds the patients: asked GetCarePlan for the caller, it refuses
    those in `refused` (as its own check would) and answers the others."""

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.asked: list[tuple[str, Any]] = []

    async def answer(self, table: Any, key: str, context: Any, local: Any, remote: Any) -> Any:
        return await remote(self, 5.0, (("x-emeuse-forwarded", "1"),))

    def unary_unary(self, method: str, *_: Any, **__: Any) -> Any:
        async def call(request: Any, timeout: float, metadata: Any) -> Any:
            self.asked.append((method, metadata))
            if request.patient_pseudonym in self.refused:
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(),
                    details=NOT_ON_THE_TEAM,
                )
            return api.GetCarePlanResponse()

        return call


def test_the_instance_holding_the_patient_is_asked_for_the_caller_and_its_refusal_stands():
    ours, theirs = random_pseudonym(), random_pseudonym()
    owner = Owner(refused={theirs})
    done, bus = recorded(NOT_ON_IT, bundle(ours, ours), {}, router=owner)
    # Asked once per patient, naming the original caller; the readings published here.
    assert len(done.event_ids) == 2 and len(bus.published) == 2
    [(method, metadata)] = owner.asked
    assert method.endswith("/GetCarePlan")
    assert (ON_BEHALF_OF, NOT_ON_IT.caller_id) in metadata
    refused, bus = recorded(NOT_ON_IT, bundle(ours, theirs), {}, router=owner)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details.startswith(f"Bundle.entry[1]: {NOT_ON_THE_TEAM}")
    assert bus.published == []


MISPLACED = (
    "territory 54 is not the territory of the patient's care plan (55): "
    "send the reading with territory 55"
)


def test_a_members_reading_naming_another_territory_than_its_patients_plan_is_refused():
    patient = random_pseudonym()
    refused, bus = recorded(ON_THE_TEAM, inr_of(patient, "54"), in_55(patient))
    assert (refused.code, refused.details) == (grpc.StatusCode.INVALID_ARGUMENT, MISPLACED)
    assert bus.published == []
    # Sent again as the answer says, it is recorded in the plan's territory.
    done, bus = recorded(ON_THE_TEAM, inr_of(patient, "55"), in_55(patient))
    assert done.event_id and len(bus.published) == 1


def test_a_caller_not_on_the_team_is_not_told_the_patients_territory():
    patient = random_pseudonym()
    refused, _ = recorded(NOT_ON_IT, inr_of(patient, "54"), in_55(patient))
    assert (refused.code, refused.details) == (grpc.StatusCode.PERMISSION_DENIED, NOT_ON_THE_TEAM)


def test_a_members_bundle_in_another_territory_is_refused_whole_naming_the_first_observation():
    ours = random_pseudonym()
    request = bundle(ours, ours)
    request.territory = "54"
    refused, bus = recorded(ON_THE_TEAM, request, in_55(ours))
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.details == (
        f"Bundle.entry[0]: {MISPLACED}; no Observation of the call was recorded"
    )
    assert bus.published == []


def test_bulk_senders_name_the_territory_they_send_in_unchecked_against_the_plan():
    patient = random_pseudonym()
    for caller in BULK_SENDERS:
        done, bus = recorded(caller, inr_of(patient, "54"), in_55(patient))
        assert done.event_id and len(bus.published) == 1, caller


def test_the_care_plan_says_the_territory_it_is_in_force_in():
    patient = random_pseudonym()
    servicer = ChronicServicer(Here(), Bus({}), in_55(patient), {})  # type: ignore[arg-type]
    token = CURRENT_CALLER.set(ON_THE_TEAM)
    try:
        answer = asyncio.run(
            servicer.GetCarePlan(api.GetCarePlanRequest(patient_pseudonym=patient), Context())  # type: ignore[arg-type]
        )
    finally:
        CURRENT_CALLER.reset(token)
    assert answer.territory == "55"
    assert answer.care_plan.patient_pseudonym == patient


class OwnerIn55(Owner):
    """Another instance holds the patients, each with its plan in force in 55."""

    def unary_unary(self, method: str, *_: Any, **__: Any) -> Any:
        asked = super().unary_unary(method)

        async def call(request: Any, timeout: float, metadata: Any) -> Any:
            answer = await asked(request, timeout, metadata)
            answer.territory = "55"
            return answer

        return call


def test_the_patients_owner_tells_its_plans_territory_and_a_misplaced_reading_is_refused():
    ours = random_pseudonym()
    owner = OwnerIn55(refused=set())
    refused, bus = recorded(ON_THE_TEAM, inr_of(ours, "54"), {}, router=owner)
    assert (refused.code, refused.details) == (grpc.StatusCode.INVALID_ARGUMENT, MISPLACED)
    assert bus.published == []
    done, bus = recorded(ON_THE_TEAM, inr_of(ours, "55"), {}, router=owner)
    assert done.event_id and len(bus.published) == 1
