"""Access on three instances: the three territories' agendas are scheduled on three
partitions, so by more than one instance, and each request is still booked once. An
instance restarted shows the same agenda gauges before any new event."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import json_format

from emeuse.access.v1 import access_service_pb2 as api
from emeuse.access.v1.access_events_pb2 import Profession, Urgency
from emeuse.registry import PARTITIONS, SLOT_BOOKED
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import new_id
from tests.integration.harness import ServiceProcess, metric
from tests.integration.test_access import access, again

COMMUNES = {"52": "52121", "54": "54395", "55": "55029"}


def booked_here(text: str) -> dict[str, float]:
    """Requests each territory booked on one instance (its /metrics)."""
    return {
        t: metric(text, "emeuse_access_requests_total", territory=t, outcome="booked")
        for t in COMMUNES
    }


def gp(territory: str) -> api.RegisterPractitionerRequest:
    request = api.RegisterPractitionerRequest(experiment_id="exp-teleconsult")
    json_format.ParseDict(
        {
            "practitioner_id": f"pract-{uuid.uuid4().hex[:12]}",
            "territory": territory,
            "profession": "PROFESSION_GP",
            "care_line": "CARE_LINE_FIRST",
            "modalities": ["MODALITY_VIDEO"],
            "place": {"kind": "PLACE_KIND_HEALTH_CENTRE", "commune": COMMUNES[territory]},
            "active": True,
        },
        request.practitioner,
    )
    return request


def slots(territory: str, practitioner_id: str, count: int) -> api.PublishAvailabilityRequest:
    request = api.PublishAvailabilityRequest(experiment_id="exp-teleconsult")
    request.availability.practitioner_id = practitioner_id
    request.availability.territory = territory
    first = datetime.now(UTC) + timedelta(hours=3)
    for n in range(count):
        slot = request.availability.slots.add()
        slot.start.FromDatetime(first + timedelta(minutes=20 * n))
        slot.duration.FromSeconds(15 * 60)
    return request


def consultation(territory: str) -> api.RequestConsultationRequest:
    request = api.RequestConsultationRequest(experiment_id="exp-teleconsult")
    json_format.ParseDict(
        {
            "request_id": new_id("req"),
            "territory": territory,
            "patient_pseudonym": random_pseudonym(),
            "urgency": "URGENCY_SAME_DAY",
            "profession": "PROFESSION_GP",
            "reason_code": "follow-up.chronic",
            "requested_by": "REQUESTER_ROLE_NURSE",
            "requester_id": "ide-ehpad-0107",
            "place": {"kind": "PLACE_KIND_HOME", "commune": COMMUNES[territory]},
            "requested_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
        request.request,
    )
    return request


# The requests left waiting would take the next tests' slots in these territories.
@pytest.mark.usefixtures("line_left_as_found")
def test_three_instances_share_the_three_territories_and_book_each_request_once(platform, bus):
    more = [platform.new_process("access", name=f"access-scale-{n}") for n in (2, 3)]
    asked: dict[str, set[str]] = {}
    for process in more:
        process.start()
    try:
        for process in more:
            process.wait_serving()
        instances = [platform.services["access"], *more]
        clients = [access(platform, p.grpc_target) for p in instances]
        before = [booked_here(p.metrics()) for p in instances]
        gps: dict[str, str] = {}
        for n, territory in enumerate(COMMUNES):
            client = clients[n % 3]  # any instance: a call goes to the territory's owner
            practitioner = gp(territory)
            gps[territory] = practitioner.practitioner.practitioner_id
            again(client.RegisterPractitioner, practitioner)
            again(
                client.PublishAvailability,
                slots(territory, practitioner.practitioner.practitioner_id, 4),
            )
            requests = [consultation(territory) for _ in range(6)]
            for k, request in enumerate(requests):
                again(clients[k % 3].RequestConsultation, request)
            asked[territory] = {r.request.request_id for r in requests}
        ours = set().union(*asked.values())
        bus.wait_for(
            SLOT_BOOKED.name, lambda r: r["event"]["request_id"] in ours, count=12, timeout=90
        )
        booked = [
            r for r in bus.all_records(SLOT_BOOKED.name, 2) if r["event"]["request_id"] in ours
        ]
        # Four new slots a territory, six requests: the four are booked, none twice. (Free
        # slots earlier tests left in a territory may take one of its other requests.)
        assert len({b["event"]["request_id"] for b in booked}) == len(booked)
        assert len({b["event"]["slot_id"] for b in booked}) == len(booked)
        for territory, requested in asked.items():
            mine = [b for b in booked if b["event"]["request_id"] in requested]
            assert 4 <= len(mine) <= 6, territory
            on_new_slots = [b for b in mine if b["event"]["practitioner_id"] == gps[territory]]
            assert len(on_new_slots) == 4, territory
        # The three territories are three partitions, so scheduled by two instances or more.
        partitions = {b["event"]["territory"]: b["partition"] for b in booked}
        assert len(set(partitions.values())) == 3, partitions
        after = [booked_here(p.metrics()) for p in instances]
        scheduled_by = [
            n
            for n, (was, now) in enumerate(zip(before, after, strict=True))
            if any(now[t] > was[t] for t in COMMUNES)
        ]
        assert len(scheduled_by) >= 2, (before, after)
    finally:
        for process in more:
            assert process.stop() is not None


# Territory 52: besides this test, only earlier tests' requests (long flagged or booked) and
# slots hours ahead are there; the Meuse's agenda changes with every test of test_access.py.
GAUGED = "52"
URGENCIES = ("immediate", "same_day", "within_7_days", "routine")


def agenda_gauges(instance: ServiceProcess) -> dict[str, float]:
    """Territory 52's agenda gauges, and the partitions held, from one scrape of /metrics."""
    text = instance.metrics()
    shown = {
        "utilisation": metric(text, "emeuse_access_slot_utilisation", territory=GAUGED),
        "partitions": metric(text, "emeuse_kernel_assigned_partitions"),
    }
    for urgency in URGENCIES:
        for name in ("waiting", "unmet"):
            shown[f"{name}:{urgency}"] = metric(
                text, f"emeuse_access_{name}_requests", territory=GAUGED, urgency=urgency
            )
    return shown


def unmet_specialist_request() -> api.RequestConsultationRequest:
    """An immediate request for a specialty nobody offers: in line, and past its delay
    (3 s in the tests) moments later."""
    request = consultation(GAUGED)
    request.request.urgency = Urgency.URGENCY_IMMEDIATE
    request.request.profession = Profession.PROFESSION_SPECIALIST
    request.request.specialty = f"derm-{uuid.uuid4().hex[:8]}"
    return request


@pytest.mark.usefixtures("line_left_as_found")
def test_a_restarted_instance_shows_the_same_agenda_gauges_without_a_new_event(platform):
    instance = platform.services["access"]
    client = access(platform)
    practitioner = gp(GAUGED)
    again(client.RegisterPractitioner, practitioner)
    again(client.PublishAvailability, slots(GAUGED, practitioner.practitioner.practitioner_id, 3))
    for request in [consultation(GAUGED) for _ in range(4)] + [
        unmet_specialist_request() for _ in range(2)
    ]:
        again(client.RequestConsultation, request)
    # Settled: the flags of the immediate requests counted (5 s after them), three scrapes
    # in a row the same.
    seen: list[dict[str, float]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = [*seen[-2:], agenda_gauges(instance)]
        now = seen[-1]
        if now["unmet:immediate"] >= 2 and len(seen) == 3 and seen[0] == seen[1] == now:
            break
        time.sleep(2)
    before = seen[-1]
    assert before["unmet:immediate"] >= 2 and before["waiting:same_day"] >= 1, seen
    assert 0 < before["utilisation"] <= 1

    instance.stop()
    instance.start()
    instance.wait_serving()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        after = agenda_gauges(instance)
        if after["partitions"] == PARTITIONS and after == before:
            break
        time.sleep(1)
    assert after == before, "agenda gauges after the restart"
