"""A replay for every patient names no person, so the gateway audits what it delivered: one
record per person whose events reached the partner's feed (method Replay, action read, by
the caller who asked, under the replay's id), through the service's one audit trail, paced
so that a large replay never crowds out the calls' own records."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from emeuse.audit.v1.audit_events_pb2 import AuditAction, PatientDataAccessed
from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.runtime.audit import AuditTrail, access_records
from emeuse.runtime.auth import Caller
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.roles import CURRENT_CALLER
from emeuse.runtime.security import LOOPBACK_PLAINTEXT
from emeuse.runtime.settings import load_settings
from services.gateway import grpc_api
from services.gateway.grpc_api import GatewayServicer
from services.gateway.replay import _verdict
from tests.unit.gateway.test_replay_filter import HAPPENED, PATIENT, READER, consenting, stored

SETTINGS = load_settings("gateway", LOOPBACK_PLAINTEXT)
OPERATOR = Caller("operator", "operator")
ONE, TWO = sorted(random_pseudonym() for _ in range(2))
PARTNER = PartnerRegistered(partner_id="glucoflow", purposes=["remote-monitoring"], active=True)


class Directory:
    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()

    def active(self, partner_id: str) -> Any:
        return PARTNER if partner_id == PARTNER.partner_id else None


class Alone:
    """The only instance: it holds every partition and has no peer to ask."""

    kernel = type("Kernel", (), {"tasks": range(64)})()

    def is_forwarded(self, context: Any) -> bool:
        return False

    async def ask_peers(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


class Context:
    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(details)


def replaying(
    monkeypatch: pytest.MonkeyPatch, delivers: list[str], fails: bool = False
) -> list[Any]:
    """Stand in for the reading of the topics: it sends the events of `delivers`."""
    asked: list[Any] = []

    async def fake(**kwargs: Any) -> tuple[int, int]:
        asked.append(kwargs)
        if kwargs["delivered"] is not None:
            kwargs["delivered"].update(delivers)
        if fails:
            raise ConnectionError("broker gone mid-replay")
        return len(delivers), 0

    monkeypatch.setattr(grpc_api, "replay_partitions", fake)
    return asked


def replay(request: api.ReplayRequest) -> tuple[Any, list[PatientDataAccessed]]:
    """Answer the request as the operator; the answer (or error) and the records written."""
    sent: list[PatientDataAccessed] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> None:
        sent.append(PatientDataAccessed.FromString(value))

    async def run() -> Any:
        trail = AuditTrail(SETTINGS, send=send)
        await trail.start()
        servicer = GatewayServicer(Alone(), None, {}, Directory(), "", None, trail)  # type: ignore[arg-type]
        token = CURRENT_CALLER.set(OPERATOR)
        try:
            return await servicer.Replay(request, Context())  # type: ignore[arg-type]
        except Exception as exc:
            return exc
        finally:
            CURRENT_CALLER.reset(token)
            await trail.stop()

    answer = asyncio.run(run())
    return answer, sent


SINCE = api.ReplayRequest(partner_id="glucoflow")
SINCE.since.FromDatetime(datetime(2026, 12, 1, tzinfo=UTC))


def test_a_replay_for_everyone_writes_one_read_record_per_person_delivered(monkeypatch):
    replaying(monkeypatch, [TWO, ONE, ONE])
    answer, records = replay(SINCE)
    assert answer.events_replayed == 3
    assert sorted(r.subject_pseudonym for r in records) == [ONE, TWO]
    for record in records:
        assert (record.service, record.method) == ("gateway", grpc_api.REPLAY_METHOD)
        assert record.action == AuditAction.AUDIT_ACTION_READ  # the partner received it
        assert (record.caller_id, record.caller_role, record.outcome) == (
            "operator",
            "operator",
            "OK",
        )
        assert record.purpose_of_event == "HOPERAT"
        assert record.call_id == answer.replay_id  # the replay's records share its id


def test_a_replay_that_delivered_nothing_writes_nothing(monkeypatch):
    replaying(monkeypatch, [])
    answer, records = replay(SINCE)
    assert answer.events_replayed == 0 and records == []


def test_what_a_failed_replay_delivered_before_failing_is_audited(monkeypatch):
    replaying(monkeypatch, [ONE], fails=True)
    answer, records = replay(SINCE)
    assert isinstance(answer, ConnectionError)
    assert [r.subject_pseudonym for r in records] == [ONE]


def test_a_backfill_is_left_to_the_guard_which_audits_the_patient_its_request_names(monkeypatch):
    asked = replaying(monkeypatch, [ONE])
    _, records = replay(api.ReplayRequest(partner_id="glucoflow", patient_pseudonym=ONE))
    assert asked[0]["delivered"] is None and records == []


def test_the_replay_reports_whom_it_sent_events_about():
    since = HAPPENED - timedelta(hours=1)
    assert _verdict(READER, stored(2.5, "{INR}"), since, consenting) == (True, PATIENT)
    assert _verdict(READER, stored(40, "{INR}"), since, consenting) == (None, "")


def full() -> float:
    labels = {"service": "gateway", "reason": "full"}
    return REGISTRY.get_sample_value("emeuse_audit_records_failed_total", labels) or 0.0


def many(count: int) -> list[PatientDataAccessed]:
    return access_records(
        service="gateway",
        method=grpc_api.REPLAY_METHOD,
        caller_id="operator",
        role="operator",
        write=False,
        subjects=[random_pseudonym() for _ in range(count)],
        outcome="OK",
    )


def written_by(record: Callable[[AuditTrail, list[Any]], Any], count: int) -> int:
    sent: list[Any] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> None:
        await asyncio.sleep(0.001)  # a broker that takes its time
        sent.append(key)

    async def run() -> None:
        trail = AuditTrail(SETTINGS, send=send)
        await trail.start()
        done = record(trail, many(count))
        if asyncio.iscoroutine(done):
            await done
        await trail.stop()

    asyncio.run(run())
    return len(sent)


def test_a_replays_records_wait_for_room_rather_than_overflow_the_trail(monkeypatch):
    monkeypatch.setattr("emeuse.runtime.audit.MAX_WAITING", 40)
    monkeypatch.setattr("emeuse.runtime.audit.BATCH", 10)
    before = full()
    assert written_by(AuditTrail.record_paced, 200) == 200
    assert full() == before
    # Queued all at once, the same records would overflow it.
    assert written_by(AuditTrail.record, 200) == 40
    assert full() - before == 160


def test_a_replay_cancelled_while_its_records_wait_for_room_loses_none_silently(monkeypatch):
    """The replay's call ends (its deadline, its caller gone) while it waits for room: each
    record it owed, the batch in hand included, is written or counted as failed."""
    monkeypatch.setattr("emeuse.runtime.audit.MAX_WAITING", 40)
    monkeypatch.setattr("emeuse.runtime.audit.BATCH", 10)
    before = full()
    sent: list[Any] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> None:
        await asyncio.sleep(0.01)  # a slow broker: the replay waits for room
        sent.append(key)

    async def run() -> None:
        trail = AuditTrail(SETTINGS, send=send)
        await trail.start()
        pacing = asyncio.ensure_future(trail.record_paced(many(100)))
        await asyncio.sleep(0.02)
        pacing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pacing
        await trail.stop()

    asyncio.run(run())
    assert len(sent) + (full() - before) == 100
