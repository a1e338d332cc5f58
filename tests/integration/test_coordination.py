"""A coordinator's view across the axes on the real platform: a critical INR raises a
chronic alert, access opens the consultation it causes, a fall opens a home incident; the
coordinator of the person's territory sees the three in order on the person's timeline and
the person among the territory's people at risk; a care-team member and the coordinator of
another territory are refused; every call is in the audit trail. A partner's events, admitted
by the gateway under the person's consent, are on the same timeline, marked with the
partner."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    Modality,
    Profession,
    RequesterRole,
    Urgency,
)
from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.coordination.v1 import coordination_service_pb2 as api
from emeuse.coordination.v1 import coordination_service_pb2_grpc as api_grpc
from emeuse.coordination.v1.coordination_events_pb2 import EntryKind
from emeuse.home.v1.home_events_pb2 import VisitEnded, VisitStarted
from emeuse.partners import inbound_topic
from emeuse.registry import (
    CONSULTATION_REQUESTED,
    READING_RECORDED,
    VISIT_ENDED,
    VISIT_STARTED,
    TopicSpec,
)
from emeuse.runtime import envelope as env
from emeuse.runtime.auth import add_caller, bearer, read_token
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import headers_for, new_id
from tests.integration.harness import Platform, metric, wait_for_care_plan
from tests.integration.test_chronic_to_access import INR_PLAN, inr_reading, publish
from tests.integration.test_grpc_roles import audit_rows
from tests.integration.test_partner_gateway import consent
from tests.integration.test_partner_security import (
    Partner,
    add_partner,
    new_partner_id,
    remove_partner,
)

# Callers of this file (ids of their own, so the roles tests' callers are left as they are).
CALLERS = {
    "coord-timeline-55": {"role": "coordinator", "territory": "55"},
    "coord-timeline-54": {"role": "coordinator", "territory": "54"},
    "ide-timeline": {"role": "care-team", "member": "ide-timeline"},
    "partner-timeline": {"role": "partner"},
}
RAISED = EntryKind.ENTRY_KIND_ALERT_RAISED
REQUESTED = EntryKind.ENTRY_KIND_CONSULTATION_REQUESTED
INCIDENT = EntryKind.ENTRY_KIND_INCIDENT_RAISED
CHECKED_IN = EntryKind.ENTRY_KIND_VISIT_STARTED
CHECKED_OUT = EntryKind.ENTRY_KIND_VISIT_ENDED


@pytest.fixture(scope="module")
def callers(platform: Platform) -> dict[str, Any]:
    for name, scope in CALLERS.items():
        add_caller(
            name,
            platform.secrets / "grpc-callers",
            platform.secrets / f"{name}.token",
            scope["role"],
            member=scope.get("member", ""),
            territory=scope.get("territory", ""),
        )
    time.sleep(2)  # services look at the callers file every second
    return {name: bearer(read_token(platform.secrets / f"{name}.token")) for name in CALLERS}


def call(platform: Platform, metadata: Any, method: str, request: Any) -> Any:
    """The answer, or the RpcError."""
    with grpc.insecure_channel(platform.services["coordination"].grpc_target) as channel:
        try:
            stub = api_grpc.CoordinationServiceStub(channel)
            return getattr(stub, method)(request, timeout=20, metadata=metadata)
        except grpc.RpcError as exc:
            return exc


def whole_timeline(platform: Platform, metadata: Any, person: str) -> list[Any]:
    """Every entry, read page by page (2 a page, so paging is exercised)."""
    entries, token = [], ""
    while True:
        page = call(
            platform,
            metadata,
            "GetPersonTimeline",
            api.GetPersonTimelineRequest(person_pseudonym=person, page_size=2, page_token=token),
        )
        if denied(page) and not entries:
            # No entry of the person yet: a refusal tells a coordinator nothing more.
            return []
        assert not isinstance(page, grpc.RpcError), page
        entries.extend(page.entries)
        token = page.next_page_token
        if not token:
            return entries


def until_shown(platform: Platform, metadata: Any, person: str, kinds: set[int]) -> list[Any]:
    deadline = time.monotonic() + 60
    while True:
        entries = whole_timeline(platform, metadata, person)
        if kinds <= {e.kind for e in entries} or time.monotonic() > deadline:
            return entries
        time.sleep(1)


def fall(bootstrap: str, person: str) -> None:
    raised_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    publish(
        bootstrap,
        "emeuse.home.v1.IncidentRaised",
        {
            "incident_id": f"inc-{person[-8:]}",
            "resident_pseudonym": person,
            "kind": "INCIDENT_KIND_FALL",
            "raised_at": raised_at,
        },
    )


def denied(answer: Any) -> bool:
    return isinstance(answer, grpc.RpcError) and answer.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_coordinator_sees_the_alert_the_consultation_it_caused_and_the_incident_in_order(
    platform, bootstrap, callers
):
    person = random_pseudonym()
    publish(
        bootstrap, "emeuse.chronic.v1.CarePlanUpdated", {"patient_pseudonym": person, **INR_PLAN}
    )
    wait_for_care_plan(platform.services["chronic"].grpc_target, person, platform.auth)
    publish(bootstrap, "emeuse.chronic.v1.ReadingRecorded", inr_reading(person, 6.1))
    coordinator = callers["coord-timeline-55"]
    until_shown(platform, coordinator, person, {RAISED, REQUESTED})
    fall(bootstrap, person)

    entries = until_shown(platform, coordinator, person, {RAISED, REQUESTED, INCIDENT})
    times = [e.occurred_at.ToDatetime() for e in entries]
    assert times == sorted(times)
    alert = next(e for e in entries if e.kind == RAISED)
    caused = next(e for e in entries if e.kind == REQUESTED and e.related_id == alert.subject_id)
    incident = next(e for e in entries if e.kind == INCIDENT)
    assert entries.index(alert) < entries.index(caused) < entries.index(incident)
    assert (alert.code, caused.code, incident.code) == ("critical", "immediate", "fall")
    assert {e.territory for e in entries} == {"55"}

    # A care-team member may not call the method at all; another territory's coordinator
    # may not see this person.
    request = api.GetPersonTimelineRequest(person_pseudonym=person)
    refused = call(platform, callers["ide-timeline"], "GetPersonTimeline", request)
    assert denied(refused) and "role care-team may not call" in refused.details()
    elsewhere = call(platform, callers["coord-timeline-54"], "GetPersonTimeline", request)
    assert denied(elsewhere) and "coordinates territory 54 only" in elsewhere.details()

    # Open critical alert and an open fall: problems on two axes.
    listed = call(
        platform, coordinator, "ListPeopleAtRisk", api.ListPeopleAtRiskRequest(page_size=100)
    )
    pages = [listed]
    while pages[-1].next_page_token:
        pages.append(
            call(
                platform,
                coordinator,
                "ListPeopleAtRisk",
                api.ListPeopleAtRiskRequest(page_size=100, page_token=pages[-1].next_page_token),
            )
        )
    mine = [p for page in pages for p in page.people if p.person_pseudonym == person]
    assert mine and {"critical_alert_open", "serious_incident_open"} <= {
        p.rule for p in mine[0].problems
    }
    other = call(
        platform,
        callers["coord-timeline-54"],
        "ListPeopleAtRisk",
        api.ListPeopleAtRiskRequest(territory="55"),
    )
    assert denied(other)

    rows = audit_rows(platform, "--patient", person, "--since", "1h", expect=3)
    reads = [row for row in rows if "coordination.GetPersonTimeline" in row]
    assert any("coord-timeline-55" in row and row.endswith("OK") for row in reads), rows
    assert any("coord-timeline-54" in row and "PERMISSION_DENIED" in row for row in reads), rows
    assert any("ide-timeline" in row and "PERMISSION_DENIED" in row for row in reads), rows

    # What the coordination dashboard shows of it: the person at risk, their timeline and
    # open items, the calls timed and the refusals counted.
    scraped = platform.services["coordination"].metrics()
    assert metric(scraped, "emeuse_coordination_people_at_risk", territory="55") >= 1
    assert metric(scraped, "emeuse_coordination_timelines_kept") >= 1
    assert metric(scraped, "emeuse_coordination_open_items", kind="alerts") >= 1
    listing = "/emeuse.coordination.v1.CoordinationService/ListPeopleAtRisk"
    assert metric(scraped, "emeuse_grpc_request_seconds_count", method=listing) >= len(pages) + 1
    refusals = metric(scraped, "emeuse_grpc_requests_total", code="PERMISSION_DENIED")
    assert refusals >= 3


def now_stamp() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def publish_as(partner: Partner, spec: TopicSpec, message: Message, person: str, key: str) -> str:
    """Publish on the partner's inbound topic with its own credential, as its app would; the
    event id sent. The gateway admits it to `spec`'s topic, or dead-letters it."""
    headers = headers_for(spec, person)
    producer = partner.producer()
    try:
        producer.send(
            inbound_topic(partner.partner_id),
            key=key.encode(),
            value=message.SerializeToString(),
            headers=headers,
        ).get(timeout=15)
    finally:
        producer.close()
    return dict(headers)[env.H_ID].decode()


def visit(kind: type[Message], person: str, visit_id: str) -> Message:
    stamp = "checked_in_at" if kind is VisitStarted else "checked_out_at"
    return json_format.ParseDict(
        {
            "visit_id": visit_id,
            "resident_pseudonym": person,
            "aide_id": "aide-0031",
            stamp: now_stamp(),
        },
        kind(),
    )


def test_a_partners_events_are_on_the_persons_timeline_marked_with_the_partner(
    platform, bootstrap, callers, tmp_path: Path
):
    # A home-aide and télésoin start-up whose device also measures INR at home.
    partner = add_partner(
        bootstrap,
        tmp_path,
        new_partner_id(),
        *("--publish", READING_RECORDED.type_name),
        *("--publish", VISIT_STARTED.type_name),
        *("--publish", VISIT_ENDED.type_name),
        *("--publish", CONSULTATION_REQUESTED.type_name),
    )
    try:
        person = random_pseudonym()
        publish(
            bootstrap,
            "emeuse.chronic.v1.CarePlanUpdated",
            {"patient_pseudonym": person, **INR_PLAN},
        )
        wait_for_care_plan(platform.services["chronic"].grpc_target, person, platform.auth)
        consent(platform, partner, person, True)
        coordinator = callers["coord-timeline-55"]
        visit_id = new_id("visit")

        # The aide checks in; the partner's device measures a critical INR during the
        # visit: chronic raises the alert, access opens the consultation it causes.
        publish_as(partner, VISIT_STARTED, visit(VisitStarted, person, visit_id), person, person)
        until_shown(platform, coordinator, person, {CHECKED_IN})
        reading = json_format.ParseDict(inr_reading(person, 6.1), ReadingRecorded())
        publish_as(partner, READING_RECORDED, reading, person, person)
        until_shown(platform, coordinator, person, {CHECKED_IN, RAISED, REQUESTED})
        # The partner asks a nurse's follow-up (télésoin), through access's re-keying,
        # and the aide checks out.
        follow_up = ConsultationRequested(
            request_id=new_id("req"),
            territory="55",
            patient_pseudonym=person,
            urgency=Urgency.URGENCY_ROUTINE,
            profession=Profession.PROFESSION_NURSE,
            modality=Modality.MODALITY_VIDEO,
            reason_code="inr-follow-up",
            requested_by=RequesterRole.REQUESTER_ROLE_NURSE,
        )
        follow_up.requested_at.FromDatetime(datetime.now(UTC))
        publish_as(partner, CONSULTATION_REQUESTED, follow_up, person, "55")
        publish_as(partner, VISIT_ENDED, visit(VisitEnded, person, visit_id), person, person)

        entries = until_shown(platform, coordinator, person, {CHECKED_IN, RAISED, CHECKED_OUT})
        deadline = time.monotonic() + 60
        while not any(e.subject_id == follow_up.request_id for e in entries):
            assert time.monotonic() < deadline, [(e.kind, e.subject_id) for e in entries]
            time.sleep(1)
            entries = whole_timeline(platform, coordinator, person)

        times = [(e.occurred_at.ToDatetime(), e.entry_id) for e in entries]
        assert times == sorted(times)
        checked_in = next(e for e in entries if e.kind == CHECKED_IN)
        alert = next(e for e in entries if e.kind == RAISED)
        caused = next(
            e for e in entries if e.kind == REQUESTED and e.related_id == alert.subject_id
        )
        asked = next(e for e in entries if e.subject_id == follow_up.request_id)
        checked_out = next(e for e in entries if e.kind == CHECKED_OUT)
        ordered = [checked_in, alert, caused, asked, checked_out]
        assert [entries.index(e) for e in ordered] == sorted(entries.index(e) for e in ordered)
        # What the partner published is marked with it; what the services decided is not.
        assert {e.partner_id for e in (checked_in, asked, checked_out)} == {partner.partner_id}
        assert (alert.partner_id, caused.partner_id) == ("", "")
        assert (asked.kind, asked.code) == (REQUESTED, "routine")
        assert checked_in.subject_id == checked_out.subject_id == visit_id

        # Neither a care-team member nor a partner reads a timeline, the partner's own
        # entries included; nor the coordinator of another territory.
        request = api.GetPersonTimelineRequest(person_pseudonym=person)
        for caller, says in (
            ("ide-timeline", "role care-team may not call"),
            ("partner-timeline", "role partner may not call"),
            ("coord-timeline-54", "coordinates territory 54 only"),
        ):
            refused = call(platform, callers[caller], "GetPersonTimeline", request)
            assert denied(refused) and says in refused.details(), (caller, refused)
    finally:
        remove_partner(bootstrap, partner)
