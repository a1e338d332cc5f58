"""The audit writer: it never makes a call wait, sends in batches, and counts what it
could not write."""

import asyncio
from typing import Any

from prometheus_client import REGISTRY

from emeuse.audit.v1.audit_events_pb2 import PatientDataAccessed
from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.runtime.audit import AuditTrail, access_records, subjects_of
from emeuse.runtime.envelope import from_headers
from emeuse.runtime.security import LOOPBACK_PLAINTEXT
from emeuse.runtime.settings import load_settings

PATIENT = "psn-" + "a" * 32
SETTINGS = load_settings("chronic", LOOPBACK_PLAINTEXT)


def records(count: int) -> list[PatientDataAccessed]:
    return access_records(
        service="chronic",
        method="/emeuse.chronic.v1.ChronicService/GetPatientStatus",
        caller_id="operator",
        role="operator",
        write=False,
        subjects=[PATIENT] * count,
        outcome="OK",
    )


def failed(reason: str) -> float:
    labels = {"service": "chronic", "reason": reason}
    return REGISTRY.get_sample_value("emeuse_audit_records_failed_total", labels) or 0.0


def test_the_persons_of_a_request_are_found_in_nested_fields():
    request = api.RecordReadingRequest(territory="55")
    request.reading.patient_pseudonym = PATIENT
    assert subjects_of(request) == [PATIENT]
    assert subjects_of(api.ListAlertsRequest()) == []


def test_a_value_that_is_not_a_pseudonym_is_never_audited_as_a_person():
    assert subjects_of(api.GetPatientStatusRequest(patient_pseudonym="Jean Dupont")) == []


def test_records_are_sent_in_the_background_with_the_platform_headers():
    sent: list[Any] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> None:
        sent.append((topic, key, value, headers))

    async def run() -> None:
        trail = AuditTrail(SETTINGS, send=send)
        await trail.start()
        trail.record(records(3))
        assert sent == []  # recording returned before anything was sent
        await asyncio.sleep(0.5)
        await trail.stop()

    asyncio.run(run())
    assert len(sent) == 3
    topic, key, value, headers = sent[0]
    assert topic == "emeuse.audit.patient-data-accessed.v1" and key == PATIENT.encode()
    assert PatientDataAccessed.FromString(value).caller_id == "operator"
    envelope = from_headers(headers)
    assert envelope.subject_pseudonym == PATIENT and envelope.source == "emeuse/chronic"


def test_a_record_the_broker_refuses_is_counted_and_logged():
    before = failed("send")

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> None:
        raise OSError("broker gone")

    async def run() -> None:
        trail = AuditTrail(SETTINGS, send=send)
        await trail.start()
        trail.record(records(2))
        await trail.stop()

    asyncio.run(run())
    assert failed("send") - before == 2


def test_records_beyond_what_the_writer_holds_are_counted(monkeypatch):
    monkeypatch.setattr("emeuse.runtime.audit.MAX_WAITING", 2)
    before = failed("full")
    trail = AuditTrail(SETTINGS, send=None)
    trail.record(records(5))
    assert failed("full") - before == 3
