"""A coordinator with a territory enrols patients in its territory only (the territory the
call names), changes only the plans in force there, and acknowledges or resolves only the
alerts raised there: refused with the words the reads use, before anything is published
or said of the patient. The operator passes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1.chronic_events_pb2 import AlertResolution, CarePlanUpdated
from emeuse.runtime.auth import ON_BEHALF_OF, Caller
from emeuse.runtime.envelope import CODE_OF_TERRITORY
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from services.chronic.care_plan import record_care_plan
from services.chronic.domain.monitoring import RESOLVED, AlertState, PatientState
from services.chronic.domain.plan import Member
from services.chronic.grpc_api import ChronicServicer
from tests.unit.chronic.plans import GP, NOW, anticoagulation_plan

COORD_55 = Caller("coord-55", "coordinator", territory="55")
COORD_54 = Caller("coord-54", "coordinator", territory="54")
OPERATOR = Caller("operator", "operator")
ELSEWHERE = "caller coord-54 coordinates territory 54 only"


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class Context:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class Here:
    """This instance holds every patient."""

    async def answer(self, table: Any, key: str, context: Any, local: Any, remote: Any) -> Any:
        return await local()


class Bus:
    """The care-plan handler behind the bus: a plan published is in force at once."""

    def __init__(self, plans: dict[str, Any]) -> None:
        self.plans = plans
        self.published: list[Any] = []

    async def publish(self, spec: Any, message: Any, **fields: Any) -> Any:
        self.published.append(message)
        if isinstance(message, CarePlanUpdated):
            patient = message.patient_pseudonym
            self.plans[patient] = record_care_plan(
                message,
                previous=self.plans.get(patient),
                territory=CODE_OF_TERRITORY[fields["territory"]],
                recorded_at=NOW,
            )

        class Envelope:
            event_id = "ev-1"

        return Envelope()


def in_55(patient: str) -> dict[str, Any]:
    """The care-plan table with the patient's plan in force in Meuse (55)."""
    plan = anticoagulation_plan(patient=patient)
    return {patient: record_care_plan(plan, previous=None, territory="55", recorded_at=NOW)}


def ask(
    caller: Caller, method: str, request: Any, plans: dict[str, Any], states: Any = None
) -> tuple[Any, Bus]:
    bus = Bus(plans)
    servicer = ChronicServicer(Here(), bus, plans, states or {})  # type: ignore[arg-type]
    token = CURRENT_CALLER.set(caller)
    try:
        return asyncio.run(getattr(servicer, method)(request, Context())), bus
    except Aborted as exc:
        return exc, bus
    finally:
        CURRENT_CALLER.reset(token)


def enrolment(patient: str, territory: str) -> api.EnrollPatientRequest:
    plan = anticoagulation_plan(patient=patient)
    plan.care_plan_id = "cp-0001"
    return api.EnrollPatientRequest(
        care_plan=plan, territory=territory, experiment_id="exp-telesurv"
    )


def test_a_coordinator_enrols_patients_in_its_own_territory_only():
    patient = random_pseudonym()
    done, bus = ask(COORD_55, "EnrollPatient", enrolment(patient, "55"), {})
    assert done.version == 1 and len(bus.published) == 1
    refused, bus = ask(COORD_54, "EnrollPatient", enrolment(patient, "55"), {})
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details == ELSEWHERE
    assert bus.published == []


def test_a_patient_enrolled_elsewhere_is_refused_before_it_is_said_to_exist():
    patient = random_pseudonym()
    # Named in its own territory, coord-54 hears neither "already enrolled" nor the answer.
    refused, bus = ask(COORD_54, "EnrollPatient", enrolment(patient, "54"), in_55(patient))
    assert refused.details == ELSEWHERE
    assert bus.published == []
    again, _ = ask(COORD_55, "EnrollPatient", enrolment(patient, "55"), in_55(patient))
    assert again.code == grpc.StatusCode.ALREADY_EXISTS


def update(patient: str, territory: str) -> api.UpdateCarePlanRequest:
    plan = anticoagulation_plan(patient=patient)
    plan.care_plan_id = "cp-0002"
    return api.UpdateCarePlanRequest(
        care_plan=plan, territory=territory, experiment_id="exp-telesurv"
    )


def test_a_plan_is_changed_by_the_coordinator_of_its_territory_only():
    patient = random_pseudonym()
    done, bus = ask(COORD_55, "UpdateCarePlan", update(patient, "55"), in_55(patient))
    assert done.version == 2 and len(bus.published) == 1
    for caller, territory in ((COORD_54, "54"), (COORD_54, "55"), (COORD_55, "54")):
        refused, bus = ask(caller, "UpdateCarePlan", update(patient, territory), in_55(patient))
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED, (caller, territory)
        assert bus.published == []
    # A patient never enrolled is refused the same way, not "not enrolled".
    stranger = random_pseudonym()
    unknown, _ = ask(COORD_55, "UpdateCarePlan", update(stranger, "55"), {})
    assert unknown.code == grpc.StatusCode.PERMISSION_DENIED
    operator, _ = ask(OPERATOR, "UpdateCarePlan", update(stranger, "55"), {})
    assert operator.code == grpc.StatusCode.FAILED_PRECONDITION


def resolved_alert(territory: str) -> PatientState:
    """A patient's state with alert a-1, raised in `territory`, resolved by the GP."""
    alert = AlertState(
        alert_id="a-1",
        episode="e-1",
        loinc_code="34714-6",
        severity="critical",
        rule="critical_high",
        reason="INR above 5",
        territory=territory,
        status=RESOLVED,
        raised_at=datetime(2026, 11, 28, 8, 0, tzinfo=UTC),
        chain=[Member(member_id=GP, role=1, rank=1)],
        acknowledge_within_s=1800,
        acknowledged_by=GP,
        resolution=AlertResolution.ALERT_RESOLUTION_HANDLED,
        resolved_by=GP,
    )
    return PatientState(alerts={"a-1": alert})


def test_alerts_are_acknowledged_and_resolved_by_the_coordinator_of_their_territory_only():
    patient = random_pseudonym()
    states = {patient: resolved_alert("55")}
    acknowledge = api.AcknowledgeAlertRequest(
        patient_pseudonym=patient, alert_id="a-1", member_id=GP
    )
    resolve = api.ResolveAlertRequest(
        patient_pseudonym=patient,
        alert_id="a-1",
        member_id=GP,
        resolution=AlertResolution.ALERT_RESOLUTION_HANDLED,
    )
    for method, request in (("AcknowledgeAlert", acknowledge), ("ResolveAlert", resolve)):
        # Done already: coord-55 is answered the alert as it stands (nothing published).
        done, _ = ask(COORD_55, method, request, in_55(patient), states)
        assert done.alert.alert_id == "a-1", method
        refused, bus = ask(COORD_54, method, request, in_55(patient), states)
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED, method
        assert refused.details == ELSEWHERE
        assert bus.published == []
    # An alert unknown is placed by the patient's plan: coord-55 hears it is not there,
    # coord-54 only that it may not.
    unknown = api.AcknowledgeAlertRequest(patient_pseudonym=patient, alert_id="a-9", member_id=GP)
    assert ask(COORD_55, "AcknowledgeAlert", unknown, in_55(patient))[0].code == (
        grpc.StatusCode.NOT_FOUND
    )
    assert ask(COORD_54, "AcknowledgeAlert", unknown, in_55(patient))[0].details == ELSEWHERE


class Elsewhere:
    """Another instance holds the patient: the call is forwarded there."""

    def __init__(self) -> None:
        self.metadata: Any = None

    async def answer(self, table: Any, key: str, context: Any, local: Any, remote: Any) -> Any:
        return await remote(self, 5.0, (("x-emeuse-forwarded", "1"),))

    def unary_unary(self, *_: Any, **__: Any) -> Any:
        async def call(request: Any, timeout: float, metadata: Any) -> Any:
            self.metadata = metadata
            return api.AcknowledgeAlertResponse()

        return call


def test_an_alert_action_forwarded_to_the_patients_owner_names_the_coordinator():
    elsewhere = Elsewhere()
    servicer = ChronicServicer(elsewhere, None, {}, {})  # type: ignore[arg-type]
    request = api.AcknowledgeAlertRequest(
        patient_pseudonym=random_pseudonym(), alert_id="a-1", member_id=GP
    )
    token = CURRENT_CALLER.set(COORD_54)
    try:
        asyncio.run(servicer.AcknowledgeAlert(request, Context()))  # type: ignore[arg-type]
    finally:
        CURRENT_CALLER.reset(token)
    assert (ON_BEHALF_OF, COORD_54.caller_id) in elsewhere.metadata
