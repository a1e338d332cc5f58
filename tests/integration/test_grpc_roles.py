"""Roles and the audit trail against the real services: each role calls a method it may
and one it may not; care-team members read and record readings only for their own
patients and in their patients' territory, coordinators only in their territory (consents
too); every read of a person is in `emeuse audit`, refusals included."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from emeuse.access.v1.access_events_pb2 import WithdrawalReason
from emeuse.access.v1.access_service_pb2 import (
    GetRequestRequest,
    ListPatientRequestsRequest,
    RequestConsultationRequest,
    RequestStatus,
    WithdrawRequestRequest,
)
from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.coordination.v1 import coordination_service_pb2  # noqa: F401
from emeuse.evaluation.v1 import evaluation_service_pb2 as evaluation
from emeuse.evaluation.v1 import evaluation_service_pb2_grpc as evaluation_grpc
from emeuse.home.v1.home_service_pb2 import (
    CheckInRequest,
    GetHomeStatusRequest,
    PlanVisitRequest,
    VisitStatus,
)
from emeuse.partners.v1.gateway_service_pb2 import (
    GetPatientConsentsRequest,
    RecordConsentRequest,
)
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1.prevention_events_pb2 import (
    CampaignStatus,
    CampaignUpdated,
    PersonEnrolled,
)
from emeuse.prevention.v1.prevention_service_pb2 import (
    ApproveCampaignRequest,
    CreateCampaignRequest,
    EnrollPersonRequest,
    FinishCampaignRequest,
    GetCampaignRequest,
    GetPersonScheduleRequest,
    UpdatePreferencesRequest,
)
from emeuse.runtime.auth import add_caller, bearer, read_caller_book, read_token
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import MATRIX, refusal
from tests.integration.events import new_id
from tests.integration.harness import Platform, emeuse, metric, wait_for_care_plan
from tests.integration.test_access import access, ask, consultation
from tests.integration.test_chronic_alerts import (
    GP,
    INR_BAND,
    NURSE,
    care_plan,
    enrol,
    reading,
)
from tests.integration.test_home import AIDE
from tests.integration.test_home import enrol as enrol_home
from tests.integration.test_partner_security import (
    READING,
    Partner,
    add_partner,
    new_partner_id,
    remove_partner,
)

STATUS = "/emeuse.chronic.v1.ChronicService/GetPatientStatus"
# Callers this file adds to the platform's callers file: id -> role and scope.
CALLERS: dict[str, dict[str, str]] = {
    "ide-ehpad-0107": {"role": "care-team", "member": NURSE["member_id"]},
    "ide-elsewhere": {"role": "care-team", "member": "ide-elsewhere"},
    "coord-55": {"role": "coordinator", "territory": "55"},
    "coord-54": {"role": "coordinator", "territory": "54"},
    "evaluation-team": {"role": "evaluator"},
    "partner-glucomind": {"role": "partner"},
}


@pytest.fixture(scope="module")
def roles(platform: Platform) -> dict[str, Any]:
    """Each caller's metadata; services follow the callers file without a restart."""
    for name, scope in CALLERS.items():
        add_caller(
            name,
            platform.secrets / "grpc-callers",
            platform.secrets / f"{name}.token",
            scope["role"],
            member=scope.get("member", ""),
            territory=scope.get("territory", ""),
        )
    time.sleep(2)  # services look at the file every second
    names = [*CALLERS, "operator", "access", "home"]
    return {name: bearer(read_token(platform.secrets / f"{name}.token")) for name in names}


@pytest.fixture(scope="module")
def patient(platform: Platform) -> str:
    """A patient followed in territory 55 by NURSE and GP."""
    pseudonym = random_pseudonym()
    enrol(platform, care_plan(pseudonym, "ANTICOAGULATION", INR_BAND, team=(NURSE, GP)))
    return pseudonym


def chronic(platform: Platform, metadata: Any, method: str, request: Any) -> Any:
    """The answer, or the RpcError."""
    with grpc.insecure_channel(platform.services["chronic"].grpc_target) as channel:
        try:
            return getattr(api_grpc.ChronicServiceStub(channel), method)(
                request, timeout=20, metadata=metadata
            )
        except grpc.RpcError as exc:
            return exc


def indicators(platform: Platform, metadata: Any) -> Any:
    request = evaluation.GetIndicatorsRequest(
        experiment_id="exp-telesurv", territory="55", from_month="2026-01", to_month="2026-12"
    )
    with grpc.insecure_channel(platform.services["evaluation"].grpc_target) as channel:
        try:
            return evaluation_grpc.EvaluationServiceStub(channel).GetIndicators(
                request, timeout=20, metadata=metadata
            )
        except grpc.RpcError as exc:
            return exc


def denied(answer: Any) -> bool:
    return isinstance(answer, grpc.RpcError) and answer.code() == grpc.StatusCode.PERMISSION_DENIED


def answered(answer: Any) -> bool:
    return not isinstance(answer, grpc.RpcError)


def status_of(patient: str) -> tuple[str, api.GetPatientStatusRequest]:
    return "GetPatientStatus", api.GetPatientStatusRequest(patient_pseudonym=patient)


def test_each_role_calls_what_it_may_and_is_refused_the_rest(platform, roles, patient):
    alerts = ("ListAlerts", api.ListAlertsRequest(territory="55"))
    summary = ("GetPatientSummary", api.GetPatientSummaryRequest(patient_pseudonym=patient))
    record = (
        "RecordReading",
        api.RecordReadingRequest(
            reading=reading(patient, "34714-6", 2.5, "{INR}"),
            territory="55",
            experiment_id="exp-telesurv",
        ),
    )
    cases = [
        ("operator", alerts, None),
        ("ide-ehpad-0107", status_of(patient), ("EnrollPatient", api.EnrollPatientRequest())),
        ("coord-55", alerts, ("ReviewPointOfCareResult", api.ReviewPointOfCareResultRequest())),
        ("partner-glucomind", record, status_of(patient)),
        ("access", summary, status_of(patient)),
        ("home", None, summary),
        ("evaluation-team", None, status_of(patient)),
    ]
    for caller, allowed, refused in cases:
        if allowed:
            answer = chronic(platform, roles[caller], *allowed)
            assert answered(answer), (caller, allowed[0], answer)
        if refused:
            answer = chronic(platform, roles[caller], *refused)
            assert denied(answer), (caller, refused[0], answer)
            assert refused[0] in answer.details()
    assert answered(indicators(platform, roles["evaluation-team"]))
    assert denied(indicators(platform, roles["ide-ehpad-0107"]))


def test_a_refusal_is_counted_for_its_caller(platform, roles, patient):
    chronic(platform, roles["home"], *status_of(patient))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = platform.services["chronic"].metrics()
        labels = {"method": STATUS, "code": "PERMISSION_DENIED", "caller": "home"}
        if metric(text, "emeuse_grpc_requests_total", **labels) >= 1:
            return
        time.sleep(0.2)
    raise AssertionError("the refusal was not counted")


def test_a_care_team_member_reads_only_the_patients_whose_team_names_them(platform, roles, patient):
    assert answered(chronic(platform, roles["ide-ehpad-0107"], *status_of(patient)))
    refused = chronic(platform, roles["ide-elsewhere"], *status_of(patient))
    assert denied(refused)
    assert "ide-elsewhere is not on this patient's care team" in refused.details()
    assert answered(chronic(platform, roles["coord-55"], *status_of(patient)))
    assert (
        "coordinates territory 54 only"
        in chronic(platform, roles["coord-54"], *status_of(patient)).details()
    )


def test_a_care_team_member_acknowledges_as_themselves_only(platform, roles, patient):
    request = api.AcknowledgeAlertRequest(
        patient_pseudonym=patient, alert_id="a-1", member_id=GP["member_id"]
    )
    refused = chronic(platform, roles["ide-ehpad-0107"], "AcknowledgeAlert", request)
    assert denied(refused)
    assert "acts as care-team member ide-ehpad-0107 only" in refused.details()


def enrolled_in(platform: Platform, patient: str, territory: str, team: tuple) -> None:
    """A patient followed in `territory` by `team` (its plan held by chronic)."""
    plan = care_plan(patient, "ANTICOAGULATION", INR_BAND, team=team)
    enrolment = api.EnrollPatientRequest(
        care_plan=plan, territory=territory, experiment_id="exp-telesurv"
    )
    assert answered(chronic(platform, platform.auth, "EnrollPatient", enrolment))
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)


def alerted(platform: Platform, patient: str, territory: str, team: tuple) -> None:
    """A patient followed in `territory` by `team`, with a critical INR alert raised."""
    enrolled_in(platform, patient, territory, team)
    record = api.RecordReadingRequest(
        reading=reading(patient, "34714-6", 6.5, "{INR}"),
        territory=territory,
        experiment_id="exp-telesurv",
    )
    assert answered(chronic(platform, platform.auth, "RecordReading", record))


def alerts_listed(platform: Platform, metadata: Any, **filters: str) -> Any:
    """The patients of every alert the caller is shown, page after page (or the RpcError)."""
    patients: list[str] = []
    token = ""
    while True:
        request = api.ListAlertsRequest(page_size=100, page_token=token, **filters)
        page = chronic(platform, metadata, "ListAlerts", request)
        if not answered(page):
            return page
        patients.extend(alert.patient_pseudonym for alert in page.alerts)
        token = page.next_page_token
        if not token:
            return patients


def test_alert_lists_show_each_caller_the_alerts_of_its_scope(platform, roles):
    in_55, in_54 = random_pseudonym(), random_pseudonym()
    alerted(platform, in_55, "55", (NURSE, GP))
    alerted(platform, in_54, "54", (GP,))
    deadline = time.monotonic() + 30
    while not {in_55, in_54} <= set(alerts_listed(platform, roles["operator"])):
        assert time.monotonic() < deadline, "the two alerts were not raised"
        time.sleep(0.5)

    ours = {in_55, in_54}
    assert ours & set(alerts_listed(platform, roles["coord-55"])) == {in_55}
    assert ours & set(alerts_listed(platform, roles["coord-54"])) == {in_54}
    assert ours & set(alerts_listed(platform, roles["ide-ehpad-0107"])) == {in_55}
    assert ours & set(alerts_listed(platform, roles["ide-elsewhere"])) == set()
    # Every alert a coordinator is shown is of its own territory.
    coord = chronic(platform, roles["coord-55"], "ListAlerts", api.ListAlertsRequest())
    assert coord.alerts and {alert.territory for alert in coord.alerts} == {"55"}
    refused = alerts_listed(platform, roles["coord-54"], territory="55")
    assert denied(refused)
    assert "caller coord-54 coordinates territory 54 only" in refused.details()


def audit_rows(platform: Platform, *args: str, expect: int, timeout: float = 20) -> list[str]:
    """`emeuse audit` rows, once at least `expect` are there (records are sent in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        run = emeuse("audit", *args, bootstrap=platform.bootstrap)
        assert run.returncode == 0, run.stderr
        rows = [line for line in run.stdout.splitlines()[2:] if line.strip()]
        if len(rows) >= expect or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def test_who_read_a_patient_and_who_was_refused_is_in_the_audit(platform, roles):
    patient = random_pseudonym()
    enrol(platform, care_plan(patient, "ANTICOAGULATION", INR_BAND, team=(NURSE, GP)))
    assert answered(chronic(platform, roles["ide-ehpad-0107"], *status_of(patient)))
    assert denied(chronic(platform, roles["ide-elsewhere"], *status_of(patient)))
    rows = audit_rows(platform, "--patient", patient, "--since", "1h", expect=4)
    reads = [row for row in rows if "chronic.GetPatientStatus" in row]
    assert any(
        "ide-ehpad-0107" in row and "care-team" in row and row.endswith("OK") for row in reads
    ), rows
    assert any(
        "ide-elsewhere" in row
        and "PERMISSION_DENIED: caller ide-elsewhere is not on this patient's care team" in row
        for row in reads
    ), rows
    # The enrolment wait read the patient as the operator: a write and reads, all there.
    assert any(
        "operator" in row and "chronic.EnrollPatient" in row and "write" in row for row in rows
    )
    mine = audit_rows(platform, "--caller", "ide-elsewhere", "--patient", patient, expect=1)
    assert mine and all("ide-elsewhere" in row for row in mine)


ROLE_REFUSAL = ("may not call", "does not call", "has no role", "own instances only")
# Which running service answers each gRPC service.
SERVING = {
    "emeuse.chronic.v1.ChronicService": "chronic",
    "emeuse.access.v1.AccessService": "access",
    "emeuse.home.v1.HomeService": "home",
    "emeuse.prevention.v1.PreventionService": "prevention",
    "emeuse.partners.v1.PartnerGatewayService": "gateway",
    "emeuse.evaluation.v1.EvaluationService": "evaluation",
    "emeuse.coordination.v1.CoordinationService": "coordination",
}


def test_every_method_refuses_exactly_the_roles_the_matrix_refuses(platform, roles):
    """Each method called with an empty request by each caller: the role refusal comes
    where roles.py says and nowhere else (an allowed call then fails on its empty request
    or answers)."""
    book = {c.caller_id: c for c in read_caller_book(platform.secrets / "grpc-callers").values()}
    wrong = []
    for service, rules in MATRIX.items():
        target = platform.services[SERVING[service]].grpc_target
        descriptor = _service_descriptor(service)
        with grpc.insecure_channel(target) as channel:
            for name in rules:
                method = descriptor.methods_by_name[name]
                call = channel.unary_unary(
                    f"/{service}/{name}",
                    request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=lambda b: b,
                )
                for caller, metadata in roles.items():
                    try:
                        call(_empty(method.input_type), timeout=10, metadata=metadata)
                        refused_by_role = False
                    except grpc.RpcError as exc:
                        refused_by_role = exc.code() == grpc.StatusCode.PERMISSION_DENIED and any(
                            words in (exc.details() or "") for words in ROLE_REFUSAL
                        )
                    expected = refusal(book[caller], f"/{service}/{name}") != ""
                    if refused_by_role != expected:
                        wrong.append((caller, name, "refused" if refused_by_role else "allowed"))
    assert wrong == []


def _service_descriptor(full_name: str) -> Any:
    return descriptor_pool.Default().FindServiceByName(full_name)


def _empty(message_descriptor: Any) -> Any:
    return GetMessageClass(message_descriptor)()


def call(platform: Platform, service: str, metadata: Any, method: str, request: Any) -> Any:
    """The answer of `service`'s `method`, or the RpcError."""
    full_name = next(name for name, serving in SERVING.items() if serving == service)
    with grpc.insecure_channel(platform.services[service].grpc_target) as channel:
        rpc = channel.unary_unary(
            f"/{full_name}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=GetMessageClass(
                _service_descriptor(full_name).methods_by_name[method].output_type
            ).FromString,
        )
        try:
            return rpc(request, timeout=20, metadata=metadata)
        except grpc.RpcError as exc:
            return exc


def answered_once_followed(read: Any, timeout: float = 20) -> Any:
    """The answer of `read()` once the service has followed the patient's care plan (it is
    refused, or UNAVAILABLE at start, until the plan is read from the bus)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = read()
        if answered(answer) or time.monotonic() > deadline:
            return answer
        assert answer.code() in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.UNAVAILABLE,
        ), answer
        time.sleep(0.3)


def not_on_the_team(answer: Any, caller: str) -> bool:
    return denied(answer) and f"caller {caller} is not on this patient's care team" in (
        answer.details()
    )


def test_access_answers_a_care_team_member_about_its_own_patients_only(
    platform, roles, patient, line_left_as_found
):
    asked = ask(access(platform), consultation(patient)).request
    listing = ListPatientRequestsRequest(patient_pseudonym=patient)
    one = GetRequestRequest(territory="55", request_id=asked.request_id)

    def listed(caller: str) -> Any:
        return call(platform, "access", roles[caller], "ListPatientRequests", listing)

    mine = answered_once_followed(lambda: listed("ide-ehpad-0107"))
    assert answered(mine), mine
    assert [r.request.request_id for r in mine.consultation_requests] == [asked.request_id]
    assert not_on_the_team(listed("ide-elsewhere"), "ide-elsewhere")
    got = call(platform, "access", roles["ide-ehpad-0107"], "GetRequest", one)
    assert answered(got) and got.request.request.patient_pseudonym == patient
    assert not_on_the_team(
        call(platform, "access", roles["ide-elsewhere"], "GetRequest", one), "ide-elsewhere"
    )
    # A request that does not exist is refused the same way: nothing said of existence.
    unknown = GetRequestRequest(territory="55", request_id="req-unknown-0001")
    assert not_on_the_team(
        call(platform, "access", roles["ide-elsewhere"], "GetRequest", unknown), "ide-elsewhere"
    )
    # A coordinator reads its own territory's requests only.
    assert answered(call(platform, "access", roles["coord-55"], "GetRequest", one))
    elsewhere = call(platform, "access", roles["coord-54"], "GetRequest", one)
    assert denied(elsewhere) and "coordinates territory 54 only" in elsewhere.details()
    assert listed("coord-54").consultation_requests == []
    assert len(listed("coord-55").consultation_requests) == 1


def test_home_and_prevention_answer_a_care_team_member_about_its_own_patients_only(
    platform, roles, patient
):
    enrol_home(platform, patient)
    status = GetHomeStatusRequest(resident_pseudonym=patient)
    schedule = GetPersonScheduleRequest(person_pseudonym=patient)
    for service, method, request in (
        ("home", "GetHomeStatus", status),
        ("prevention", "GetPersonSchedule", schedule),
    ):
        mine = answered_once_followed(
            lambda s=service, m=method, r=request: call(platform, s, roles["ide-ehpad-0107"], m, r)
        )
        assert answered(mine), (service, mine)
        assert not_on_the_team(
            call(platform, service, roles["ide-elsewhere"], method, request), "ide-elsewhere"
        )
    home = call(platform, "home", roles["ide-ehpad-0107"], "GetHomeStatus", status)
    assert home.enrolled
    # The home is enrolled in 55: a coordinator of 54 is refused it, one of 55 reads it.
    assert answered(call(platform, "home", roles["coord-55"], "GetHomeStatus", status))
    elsewhere = call(platform, "home", roles["coord-54"], "GetHomeStatus", status)
    assert denied(elsewhere) and "coordinates territory 54 only" in elsewhere.details()


def test_access_lets_a_care_team_member_request_and_withdraw_for_its_own_patients_only(
    platform, roles, patient, line_left_as_found
):
    # A need no practitioner of the session offers: the request waits whatever slots other
    # tests (a simulation) left free in 55, so the withdrawals below find it waiting.
    asked = consultation(patient, specialty="dermatology")
    request = RequestConsultationRequest(request=asked, experiment_id="exp-teleconsult")

    def requested(caller: str) -> Any:
        return call(platform, "access", roles[caller], "RequestConsultation", request)

    mine = answered_once_followed(lambda: requested("ide-ehpad-0107"))
    assert answered(mine), mine
    assert mine.request.request.request_id == asked.request_id
    assert not_on_the_team(requested("ide-elsewhere"), "ide-elsewhere")
    other = RequestConsultationRequest(
        request=consultation(patient), experiment_id="exp-teleconsult"
    )
    refused = call(platform, "access", roles["ide-elsewhere"], "RequestConsultation", other)
    assert not_on_the_team(refused, "ide-elsewhere")
    unknown = GetRequestRequest(territory="55", request_id=other.request.request_id)
    assert call(platform, "access", roles["operator"], "GetRequest", unknown).code() == (
        grpc.StatusCode.NOT_FOUND
    ), "a refused request was published"
    withdraw = WithdrawRequestRequest(
        territory="55",
        request_id=asked.request_id,
        reason=WithdrawalReason.WITHDRAWAL_REASON_NO_LONGER_NEEDED,
        actor_id="ide-ehpad-0107",
    )
    refused = call(platform, "access", roles["ide-elsewhere"], "WithdrawRequest", withdraw)
    assert not_on_the_team(refused, "ide-elsewhere")
    elsewhere = call(platform, "access", roles["coord-54"], "WithdrawRequest", withdraw)
    assert denied(elsewhere) and "coordinates territory 54 only" in elsewhere.details()
    one = GetRequestRequest(territory="55", request_id=asked.request_id)
    still = call(platform, "access", roles["operator"], "GetRequest", one)
    assert still.request.status == RequestStatus.REQUEST_STATUS_WAITING
    withdrawn = call(platform, "access", roles["ide-ehpad-0107"], "WithdrawRequest", withdraw)
    assert answered(withdrawn), withdrawn
    assert withdrawn.request.status == RequestStatus.REQUEST_STATUS_WITHDRAWN


def test_home_lets_a_care_team_member_record_a_visit_of_its_own_patients_only(
    platform, roles, patient
):
    enrol_home(platform, patient)
    plan = PlanVisitRequest(resident_pseudonym=patient, visit_id=new_id("visit"), aide_id=AIDE)
    plan.planned_start.FromDatetime(datetime.now(UTC) + timedelta(minutes=5))
    plan.planned_duration.FromSeconds(30 * 60)
    plan.missed_after.FromSeconds(15 * 60)
    assert answered(call(platform, "home", roles["operator"], "PlanVisit", plan))
    check_in = CheckInRequest(resident_pseudonym=patient, visit_id=plan.visit_id, aide_id=AIDE)

    def checked_in(caller: str) -> Any:
        return call(platform, "home", roles[caller], "CheckIn", check_in)

    assert not_on_the_team(checked_in("ide-elsewhere"), "ide-elsewhere")
    mine = answered_once_followed(lambda: checked_in("ide-ehpad-0107"))
    assert answered(mine), mine
    assert mine.visit.status == VisitStatus.VISIT_STATUS_IN_PROGRESS
    # Nothing is said of another resident's home to a care-team caller not on its team.
    stranger = CheckInRequest(
        resident_pseudonym=random_pseudonym(), visit_id=plan.visit_id, aide_id=AIDE
    )
    assert not_on_the_team(
        call(platform, "home", roles["ide-ehpad-0107"], "CheckIn", stranger), "ide-ehpad-0107"
    )


def coordinates_elsewhere(answer: Any) -> bool:
    return denied(answer) and "caller coord-54 coordinates territory 54 only" in answer.details()


def test_home_lets_a_coordinator_plan_the_visits_of_its_territorys_homes_only(platform, roles):
    resident = random_pseudonym()
    enrol_home(platform, resident)  # in 55

    def planned(caller: str) -> Any:
        plan = PlanVisitRequest(resident_pseudonym=resident, visit_id=new_id("visit"), aide_id=AIDE)
        plan.planned_start.FromDatetime(datetime.now(UTC) + timedelta(minutes=5))
        plan.planned_duration.FromSeconds(30 * 60)
        return plan.visit_id, call(platform, "home", roles[caller], "PlanVisit", plan)

    refused_id, refused = planned("coord-54")
    assert coordinates_elsewhere(refused), refused
    allowed_id, allowed = planned("coord-55")
    assert answered(allowed), allowed
    status = call(
        platform,
        "home",
        roles["operator"],
        "GetHomeStatus",
        GetHomeStatusRequest(resident_pseudonym=resident),
    )
    visits = {visit.visit_id for visit in status.visits}
    assert allowed_id in visits
    assert refused_id not in visits, "a refused visit was published"


def test_prevention_lets_a_coordinator_enrol_people_in_its_territory_only(platform, roles):
    def enrolment(person: str) -> EnrollPersonRequest:
        return EnrollPersonRequest(
            person=PersonEnrolled(
                person_pseudonym=person,
                age_band_from=50,
                age_band_to=54,
                territory=Territory.TERRITORY_MEUSE,
                allowed_channels=["app"],
            ),
            experiment_id="exp-prevention",
        )

    ours, theirs = random_pseudonym(), random_pseudonym()
    enrolled = call(platform, "prevention", roles["coord-55"], "EnrollPerson", enrolment(ours))
    assert answered(enrolled), enrolled
    refused = call(platform, "prevention", roles["coord-54"], "EnrollPerson", enrolment(theirs))
    assert coordinates_elsewhere(refused), refused
    # Nothing was published: the person refused is not enrolled, the one let in is.
    for person, expected in (
        (ours, grpc.StatusCode.OK),
        (theirs, grpc.StatusCode.FAILED_PRECONDITION),
    ):
        change = UpdatePreferencesRequest(person_pseudonym=person, allowed_channels=["app"])
        answer = call(platform, "prevention", roles["operator"], "UpdatePreferences", change)
        assert (grpc.StatusCode.OK if answered(answer) else answer.code()) == expected, answer
    # A person enrolled in 55 is not changed by a coordinator of 54 either.
    change = UpdatePreferencesRequest(person_pseudonym=ours, allowed_channels=["sms"])
    assert coordinates_elsewhere(
        call(platform, "prevention", roles["coord-54"], "UpdatePreferences", change)
    )


def test_prevention_lets_a_coordinator_steer_its_territorys_campaigns_only(platform, roles):
    def campaign_for(*territories: Territory.ValueType) -> CreateCampaignRequest:
        campaign = CampaignUpdated(
            campaign_id=new_id("cmp-roles"),
            created_by="staff-designer",
            experiment_id="exp-prevention",
        )
        campaign.segment.age_from, campaign.segment.age_to = 50, 54
        campaign.segment.territories.extend(territories)
        campaign.messages.add(template_id="campaign.roles")
        # A window a day ahead: nobody is targeted while the test runs.
        start = datetime.now(UTC) + timedelta(days=1)
        campaign.start_at.FromDatetime(start)
        campaign.end_at.FromDatetime(start + timedelta(hours=1))
        return CreateCampaignRequest(campaign=campaign)

    def prevention(caller: str, method: str, request: Any) -> Any:
        return call(platform, "prevention", roles[caller], method, request)

    meuse = campaign_for(Territory.TERRITORY_MEUSE)
    assert coordinates_elsewhere(prevention("coord-54", "CreateCampaign", meuse))
    everywhere = campaign_for()  # all three territories: no territorial coordinator's
    assert coordinates_elsewhere(prevention("coord-54", "CreateCampaign", everywhere))
    created = prevention("coord-55", "CreateCampaign", meuse)
    assert answered(created), created
    campaign_id = created.campaign.definition.campaign_id

    approve = ApproveCampaignRequest(campaign_id=campaign_id, approver_id="staff-approver")
    assert coordinates_elsewhere(prevention("coord-54", "ApproveCampaign", approve))
    finish = FinishCampaignRequest(campaign_id=campaign_id, actor_id="staff-designer")
    assert coordinates_elsewhere(prevention("coord-54", "FinishCampaign", finish))
    # Nothing was published: still the draft coord-55 made, which it approves and ends.
    draft = prevention("operator", "GetCampaign", GetCampaignRequest(campaign_id=campaign_id))
    assert draft.campaign.status == CampaignStatus.CAMPAIGN_STATUS_DRAFT
    assert draft.campaign.definition.version == 1
    assert answered(prevention("coord-55", "ApproveCampaign", approve))
    ended = prevention("coord-55", "FinishCampaign", finish)
    assert ended.campaign.status == CampaignStatus.CAMPAIGN_STATUS_FINISHED, ended


def counted_refusal(platform: Platform, service: str, method: str, caller: str) -> bool:
    """Whether `service` counted a PERMISSION_DENIED of `method` for `caller` (within 5 s)."""
    labels = {"method": method, "code": "PERMISSION_DENIED", "caller": caller}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = platform.services[service].metrics()
        if metric(text, "emeuse_grpc_requests_total", **labels) >= 1:
            return True
        time.sleep(0.2)
    return False


def inr(patient: str, value: float, territory: str = "55") -> api.RecordReadingRequest:
    return api.RecordReadingRequest(
        reading=reading(patient, "34714-6", value, "{INR}"),
        territory=territory,
        experiment_id="exp-telesurv",
    )


def fhir_bundle(*entries: tuple[str, str, float, str]) -> api.IngestFhirObservationRequest:
    """A Bundle of Observations (patient, LOINC code, value, UCUM unit), measured just now."""
    measured = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    resources = [
        {
            "resource": {
                "resourceType": "Observation",
                "identifier": [{"system": "urn:oid:1.2.250.1.999.1", "value": new_id("obs")}],
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": measured,
                "valueQuantity": {
                    "value": value,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        }
        for patient, loinc, value, unit in entries
    ]
    return api.IngestFhirObservationRequest(
        fhir_json=json.dumps({"resourceType": "Bundle", "type": "collection", "entry": resources}),
        territory="55",
        experiment_id="exp-telesurv",
    )


WEIGHT, GLUCOSE = "29463-7", "2339-0"
RECORD = "/emeuse.chronic.v1.ChronicService/RecordReading"


def test_readings_are_recorded_by_the_patients_care_team_and_coordinator_only(platform, roles):
    patient, other, stranger = random_pseudonym(), random_pseudonym(), random_pseudonym()
    enrolled_in(platform, patient, "55", (NURSE, GP))
    enrolled_in(platform, other, "55", (GP,))  # not the nurse's patient
    # Refused first: had any been published, the patient's partition would have applied
    # it before the readings let through after it.
    weight = api.RecordReadingRequest(
        reading=reading(patient, WEIGHT, 71.0, "kg"), territory="55", experiment_id="exp-telesurv"
    )
    assert not_on_the_team(
        chronic(platform, roles["ide-elsewhere"], "RecordReading", weight), "ide-elsewhere"
    )
    assert coordinates_elsewhere(chronic(platform, roles["coord-54"], "RecordReading", weight))
    in_54 = chronic(platform, roles["coord-55"], "RecordReading", inr(patient, 2.2, "54"))
    assert denied(in_54) and "caller coord-55 coordinates territory 55 only" in in_54.details()
    # A Bundle with one Observation of a patient not the member's is refused whole.
    mixed = fhir_bundle((patient, WEIGHT, 72.0, "kg"), (other, WEIGHT, 80.0, "kg"))
    refused = chronic(platform, roles["ide-ehpad-0107"], "IngestFhirObservation", mixed)
    assert denied(refused)
    assert refused.details().startswith(
        "Bundle.entry[1]: caller ide-ehpad-0107 is not on this patient's care team"
    )
    assert counted_refusal(platform, "chronic", RECORD, "ide-elsewhere")
    # The member on the team names another territory than the plan's: its alerts would be
    # raised there, in another coordinator's list. Refused, saying which to name.
    in_54 = api.RecordReadingRequest(
        reading=reading(patient, WEIGHT, 73.0, "kg"), territory="54", experiment_id="exp-telesurv"
    )
    misplaced = chronic(platform, roles["ide-ehpad-0107"], "RecordReading", in_54)
    assert misplaced.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not the territory of the patient's care plan (55)" in misplaced.details()
    plan = chronic(
        platform,
        roles["ide-ehpad-0107"],
        "GetCarePlan",
        api.GetCarePlanRequest(patient_pseudonym=patient),
    )
    assert plan.territory == "55"

    # A patient with no plan is on nobody's team: refused at the call.
    assert not_on_the_team(
        chronic(platform, roles["ide-ehpad-0107"], "RecordReading", inr(stranger, 2.4)),
        "ide-ehpad-0107",
    )
    # The member on the team, the coordinator of 55 and a partner are let through; a
    # partner's bundle may name any patient.
    assert answered(chronic(platform, roles["ide-ehpad-0107"], "RecordReading", inr(patient, 2.4)))
    assert answered(chronic(platform, roles["coord-55"], "RecordReading", inr(patient, 2.6)))
    bulk = fhir_bundle((other, GLUCOSE, 5.5, "mmol/L"), (patient, GLUCOSE, 6.1, "mmol/L"))
    sent = chronic(platform, roles["partner-glucomind"], "IngestFhirObservation", bulk)
    assert answered(sent) and len(sent.event_ids) == 2

    deadline = time.monotonic() + 30
    while True:
        status = chronic(platform, platform.auth, *status_of(patient))
        latest = {value.loinc_code: value.value for value in status.latest_values}
        if GLUCOSE in latest:
            break
        assert time.monotonic() < deadline, "the readings let through were not applied"
        time.sleep(0.3)
    assert latest["34714-6"] == 2.6
    assert WEIGHT not in latest, "a refused reading was recorded"


@pytest.fixture(scope="module")
def consented_partner(
    bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Partner]:
    secrets = tmp_path_factory.mktemp("roles-partner")
    added = add_partner(bootstrap, secrets, new_partner_id(), "--read", READING)
    yield added
    remove_partner(bootstrap, added)


def test_the_gateway_lets_a_coordinator_record_consents_of_its_territorys_patients_only(
    platform, roles, consented_partner
):
    in_55, in_54, stranger = random_pseudonym(), random_pseudonym(), random_pseudonym()
    enrolled_in(platform, in_55, "55", (GP,))
    enrolled_in(platform, in_54, "54", (GP,))

    def consent(caller: str, patient: str, territory: str) -> Any:
        request = RecordConsentRequest(
            patient_pseudonym=patient,
            partner_id=consented_partner.partner_id,
            purpose="remote-monitoring",
            granted=True,
            territory=territory,
            experiment_id="integration-tests",
        )
        return call(platform, "gateway", roles[caller], "RecordConsent", request)

    # Let in once the gateway follows the plan and knows the partner (moments after both).
    deadline = time.monotonic() + 30
    while not answered(mine := consent("coord-55", in_55, "55")):
        assert mine.code() in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.NOT_FOUND,
        ), mine
        assert time.monotonic() < deadline, mine
        time.sleep(0.3)
    # Naming its own territory, a coordinator is refused a patient followed in another.
    assert coordinates_elsewhere(consent("coord-54", in_55, "54"))
    assert coordinates_elsewhere(consent("coord-54", in_55, "55"))
    theirs = consent("coord-55", in_54, "55")
    assert denied(theirs) and "caller coord-55 coordinates territory 55 only" in theirs.details()
    # A patient with no care plan is no coordinator's: the operator records its consent.
    unplaced = consent("coord-55", stranger, "55")
    assert denied(unplaced) and "coordinates territory 55 only" in unplaced.details()
    assert answered(consent("operator", stranger, "55"))
    assert counted_refusal(
        platform, "gateway", "/emeuse.partners.v1.PartnerGatewayService/RecordConsent", "coord-54"
    )
    # Nothing was recorded for the refused calls.
    for patient, expected in ((in_55, 1), (in_54, 0)):
        consents = call(
            platform,
            "gateway",
            roles["operator"],
            "GetPatientConsents",
            GetPatientConsentsRequest(patient_pseudonym=patient),
        )
        assert len(consents.consents) == expected, patient
    # Read as recorded: a coordinator reads the consents of its territory's patients only.

    def consents_of(caller: str, patient: str) -> Any:
        request = GetPatientConsentsRequest(patient_pseudonym=patient)
        return call(platform, "gateway", roles[caller], "GetPatientConsents", request)

    read = consents_of("coord-55", in_55)
    assert answered(read) and len(read.consents) == 1
    elsewhere = consents_of("coord-54", in_55)
    assert denied(elsewhere) and "coordinates territory 54 only" in elsewhere.details()
    assert denied(consents_of("coord-55", stranger))
