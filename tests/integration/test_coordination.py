"""A coordinator's view across the axes on the real platform: a critical INR raises a
chronic alert, access opens the consultation it causes, a fall opens a home incident; the
coordinator of the person's territory sees the three in order on the person's timeline and
the person among the territory's people at risk; a care-team member and the coordinator of
another territory are refused; every call is in the audit trail."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from emeuse.coordination.v1 import coordination_service_pb2 as api
from emeuse.coordination.v1 import coordination_service_pb2_grpc as api_grpc
from emeuse.coordination.v1.coordination_events_pb2 import EntryKind
from emeuse.runtime.auth import add_caller, bearer, read_token
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.harness import Platform, metric, wait_for_care_plan
from tests.integration.test_chronic_to_access import INR_PLAN, inr_reading, publish
from tests.integration.test_grpc_roles import audit_rows

# Callers of this file (ids of their own, so the roles tests' callers are left as they are).
CALLERS = {
    "coord-timeline-55": {"role": "coordinator", "territory": "55"},
    "coord-timeline-54": {"role": "coordinator", "territory": "54"},
    "ide-timeline": {"role": "care-team", "member": "ide-timeline"},
}
RAISED = EntryKind.ENTRY_KIND_ALERT_RAISED
REQUESTED = EntryKind.ENTRY_KIND_CONSULTATION_REQUESTED
INCIDENT = EntryKind.ENTRY_KIND_INCIDENT_RAISED


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
