"""The guard's roles and audit, on a real in-process gRPC server: a refused role gets
PERMISSION_DENIED and is counted; every call that touches a person leaves audit records."""

import asyncio
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from emeuse.audit.v1.audit_events_pb2 import AuditAction
from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.runtime.auth import ON_BEHALF_OF, Caller, add_caller, bearer, hash_token, read_token
from emeuse.runtime.grpc_server import CallersFile, Guard
from emeuse.runtime.roles import current_caller

SERVICE = "chronic"
PATIENT = "psn-" + "a" * 32
OTHER = "psn-" + "b" * 32
STATUS = "/emeuse.chronic.v1.ChronicService/GetPatientStatus"
ALERTS = "/emeuse.chronic.v1.ChronicService/ListAlerts"
TOKENS = {name: name[0] * 40 for name in ("operator", "nurse", "chronic", "home")}
CALLERS = {
    hash_token(TOKENS["operator"]): Caller("operator", "operator"),
    hash_token("c" * 39 + "1"): Caller("coord-55", "coordinator", territory="55"),
    hash_token("e" * 40): Caller("evaluator", "evaluator"),
    hash_token("p" * 40): Caller("glucoflow", "partner"),
    hash_token(TOKENS["nurse"]): Caller("nurse", "care-team", member="ide-1"),
    hash_token(TOKENS["chronic"]): Caller("chronic", "service"),
    hash_token(TOKENS["home"]): Caller("home", "service"),
}


class Chronic(api_grpc.ChronicServiceServicer):
    """Answers for whom the guard says it answers."""

    async def GetPatientStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = current_caller()
        return api.GetPatientStatusResponse(
            patient_pseudonym=request.patient_pseudonym,
            not_monitored_loinc_codes=[caller.caller_id if caller else ""],
        )

    async def ListAlerts(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return api.ListAlertsResponse(
            alerts=[api.Alert(patient_pseudonym=PATIENT), api.Alert(patient_pseudonym=OTHER)]
        )


def served(callers: Any, calls: Any) -> tuple[list[Any], list[Any]]:
    """Serve Chronic behind the guard, make the calls; their answers and the audit records."""
    audited: list[Any] = []

    async def run() -> list[Any]:
        server = grpc.aio.server(interceptors=[Guard(SERVICE, callers, audit=audited.extend)])
        api_grpc.add_ChronicServiceServicer_to_server(Chronic(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        answers = []
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                for call in calls:
                    try:
                        answers.append(await call(api_grpc.ChronicServiceStub(channel)))
                    except grpc.aio.AioRpcError as exc:
                        answers.append(exc)
                    await asyncio.sleep(0.05)  # the guard counts and audits as the call ends
        finally:
            await server.stop(1)
        return answers

    answers = asyncio.run(run())
    return answers, audited


def status(token: str, extra: Any = ()) -> Any:
    return lambda stub: stub.GetPatientStatus(
        api.GetPatientStatusRequest(patient_pseudonym=PATIENT),
        timeout=10,
        metadata=(*bearer(token), *extra),
    )


def counted(code: str, caller: str) -> float:
    labels = {"service": SERVICE, "method": STATUS, "code": code, "caller": caller}
    return REGISTRY.get_sample_value("emeuse_grpc_requests_total", labels) or 0.0


def test_a_role_not_allowed_the_method_is_refused_counted_and_audited():
    before = counted("PERMISSION_DENIED", "home")
    [error], [record] = served(CALLERS, [status(TOKENS["home"])])
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == f"service home does not call {STATUS}"
    assert counted("PERMISSION_DENIED", "home") - before == 1
    assert (record.caller_id, record.caller_role, record.outcome) == (
        "home",
        "service",
        "PERMISSION_DENIED",
    )
    assert record.refusal_reason == error.details()
    assert record.subject_pseudonym == PATIENT


def test_an_allowed_read_is_audited_with_its_caller_role_and_outcome():
    [answer], [record] = served(CALLERS, [status(TOKENS["nurse"])])
    assert answer.patient_pseudonym == PATIENT
    assert (record.caller_id, record.caller_role, record.method) == ("nurse", "care-team", STATUS)
    assert (record.outcome, record.action) == ("OK", AuditAction.AUDIT_ACTION_READ)
    assert record.service == SERVICE and record.call_id and record.answered_at.seconds > 0
    assert record.refusal_reason == ""


def test_a_list_call_is_audited_for_each_person_in_its_answer():
    call = lambda stub: stub.ListAlerts(  # noqa: E731
        api.ListAlertsRequest(), timeout=10, metadata=bearer(TOKENS["operator"])
    )
    _, records = served(CALLERS, [call])
    assert [r.subject_pseudonym for r in records] == [PATIENT, OTHER]
    assert len({r.call_id for r in records}) == 1


def test_an_unauthenticated_call_is_audited_as_refused():
    [error], [record] = served(CALLERS, [status("x" * 40)])
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (record.caller_id, record.outcome) == ("unknown", "UNAUTHENTICATED")


def test_a_forwarded_call_is_answered_for_the_original_caller_and_audited_once():
    forwarded = (("x-emeuse-forwarded", "1"), (ON_BEHALF_OF, "nurse"))
    [answer], records = served(CALLERS, [status(TOKENS["chronic"], forwarded)])
    assert answer.not_monitored_loinc_codes == [
        "nurse"
    ]  # the servicer saw the nurse, not the service
    assert records == []  # the instance that took the call audits it


def test_only_the_service_itself_may_name_whom_it_acts_for():
    [answer], _ = served(CALLERS, [status(TOKENS["operator"], ((ON_BEHALF_OF, "nurse"),))])
    assert answer.not_monitored_loinc_codes == ["operator"]


def test_callers_added_and_removed_are_followed_without_a_restart(tmp_path, monkeypatch):
    monkeypatch.setattr("emeuse.runtime.grpc_server.CALLERS_RECHECK_S", 0.0)
    path = tmp_path / "grpc-callers"
    add_caller("operator", path, tmp_path / "operator.token")
    callers = CallersFile(path)

    async def add_nurse(stub: Any) -> str:
        add_caller("nurse", path, tmp_path / "nurse.token", "care-team", member="ide-1")
        return "added"

    def as_nurse(stub: Any) -> Any:
        return status(read_token(tmp_path / "nurse.token"))(stub)

    async def remove_nurse(stub: Any) -> str:
        from emeuse.runtime.auth import remove_caller

        remove_caller("nurse", path)
        return "removed"

    answers, _ = served(callers, [add_nurse, as_nurse, remove_nurse, as_nurse])
    assert answers[1].not_monitored_loinc_codes == ["nurse"]
    assert answers[3].code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("token", "role", "purpose", "outcome"),
    [
        (TOKENS["nurse"], "care-team", "TREAT", "OK"),
        ("c" * 39 + "1", "coordinator", "COC", "OK"),
        (TOKENS["operator"], "operator", "HOPERAT", "OK"),
        (TOKENS["home"], "service", "HOPERAT", "PERMISSION_DENIED"),
        ("e" * 40, "evaluator", "HRESCH", "PERMISSION_DENIED"),
        ("p" * 40, "partner", "TREAT", "PERMISSION_DENIED"),
        ("x" * 40, "", "", "UNAUTHENTICATED"),
    ],
)
def test_the_guard_writes_the_purpose_of_use_of_the_callers_role(token, role, purpose, outcome):
    _, [record] = served(CALLERS, [status(token)])
    assert (record.caller_role, record.outcome) == (role, outcome)
    assert record.purpose_of_event == purpose
