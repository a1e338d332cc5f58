"""Two instances of the coordination service share the partitions: a person's timeline is
answered by whichever instance is asked (forwarded to the owner), and a territory's people
at risk are merged from both, paged without repeats. An instance's gauges show the state of
the partitions it holds from the moment it opens them: a restart or a second instance
joining changes no total."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from emeuse.coordination.v1 import coordination_service_pb2 as api
from emeuse.coordination.v1 import coordination_service_pb2_grpc as api_grpc
from emeuse.coordination.v1.coordination_events_pb2 import Axis
from emeuse.registry import ALERT_RAISED, INCIDENT_RAISED, PARTITIONS
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.pseudonym import random_pseudonym
from services.coordination.figures import OPEN_KINDS
from tests.integration.harness import Bus, Platform, ServiceProcess, metric
from tests.unit.coordination.stories import alert_raised, at, incident

# Territory 52: the other integration tests send their people to 55 and 54.
TERRITORY = "52"


@pytest.fixture
def coordination(bootstrap: str, tmp_path: Path) -> Iterator[Platform]:
    platform = Platform(bootstrap, tmp_path)
    app_id = f"emeuse-coordination-{uuid.uuid4().hex[:8]}"
    try:
        for name in ("coordination-1", "coordination-2"):
            platform.services[name] = platform.new_process("coordination", name, app_id=app_id)
            platform.services[name].start()
        for process in platform.services.values():
            process.wait_serving()
        yield platform
    finally:
        platform.stop_all()


def send(bus: Bus, spec, message, minutes: float) -> None:
    subject = getattr(message, spec.subject_field)
    envelope = env.new_envelope(
        event_type=spec.type_name,
        source="partner/coordination-tests",
        subject_pseudonym=subject,
        territory=env.territory_from_code(TERRITORY),
        experiment_id="exp-coordination",
        schema_version=spec.schema_version,
        occurred_at=at(minutes),
    )
    bus.send(
        spec.name,
        subject.encode(),
        message.SerializeToString(),
        env.to_headers(envelope),
        partition=expected_partition(subject.encode(), PARTITIONS),
    )


def people_at_risk(platform: Platform, name: str) -> list[api.PersonAtRisk]:
    """Every listed person of the territory, two a page."""
    people: list[api.PersonAtRisk] = []
    token = ""
    with grpc.insecure_channel(platform.services[name].grpc_target) as channel:
        stub = api_grpc.CoordinationServiceStub(channel)
        while True:
            page = stub.ListPeopleAtRisk(
                api.ListPeopleAtRiskRequest(territory=TERRITORY, page_size=2, page_token=token),
                timeout=20,
                metadata=platform.auth,
            )
            people.extend(page.people)
            token = page.next_page_token
            if not token:
                return people


def test_both_instances_answer_for_every_person_and_the_list_merges_their_partitions(
    coordination: Platform, bus: Bus
):
    people = [random_pseudonym() for _ in range(8)]
    assert len({expected_partition(p.encode(), PARTITIONS) for p in people}) > 1
    for n, person in enumerate(people):
        send(bus, ALERT_RAISED, alert_raised(person, f"al-{person[-6:]}", at(n)), n)
        send(bus, INCIDENT_RAISED, incident(person, f"inc-{person[-6:]}", at(n + 1)), n + 1)

    # Access, when it runs, opens consultations for the alerts and falls, which changes the
    # people's urgency: wait until both instances give the same settled list.
    deadline = time.monotonic() + 60
    while True:
        listed = people_at_risk(coordination, "coordination-1")
        names = [p.person_pseudonym for p in listed]
        other = [p.person_pseudonym for p in people_at_risk(coordination, "coordination-2")]
        if (set(people) <= set(names) and other == names) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(people) <= set(names)
    assert other == names
    assert len(names) == len(set(names)), "a person listed on two pages"
    ranks = [(-p.urgency, p.oldest_since.ToDatetime(), p.person_pseudonym) for p in listed]
    assert ranks == sorted(ranks)

    for name in ("coordination-1", "coordination-2"):
        with grpc.insecure_channel(coordination.services[name].grpc_target) as channel:
            stub = api_grpc.CoordinationServiceStub(channel)
            for person in people:
                answer = stub.GetPersonTimeline(
                    api.GetPersonTimelineRequest(person_pseudonym=person),
                    timeout=20,
                    metadata=coordination.auth,
                )
                # Access may add the consultation it opens for the alert or the fall.
                shown = [e.code for e in answer.entries if e.axis != Axis.AXIS_ACCESS]
                assert shown == ["critical", "fall"]
                assert answer.territory == TERRITORY


# Compared exactly: territory 52's people at risk, which only this file's people are. The
# other gauges also count the session's shared platform, whose timers (escalations, unmet
# requests) may add entries and open items at any moment: they are checked not to restart.
GAUGES = [("emeuse_coordination_people_at_risk", {"territory": TERRITORY})]
COUNTED = [
    ("emeuse_coordination_timelines_kept", {}),
    ("emeuse_coordination_timeline_entries_kept", {}),
    *(("emeuse_coordination_open_items", {"kind": kind}) for kind in OPEN_KINDS),
]


def gauges(
    *instances: ServiceProcess, which: list[tuple[str, dict[str, str]]] = GAUGES
) -> dict[str, float]:
    """Each gauge summed over the instances, as Prometheus would (sum without instance)."""
    texts = [instance.metrics() for instance in instances]
    return {
        shown(name, labels): sum(metric(text, name, **labels) for text in texts)
        for name, labels in which
    }


def at_least(before: dict[str, float], *instances: ServiceProcess) -> bool:
    """No gauge went back: what was counted before the restart is counted again."""
    now = gauges(*instances, which=COUNTED)
    return all(now[name] >= value for name, value in before.items())


def shown(name: str, labels: dict[str, str]) -> str:
    return name + "".join(f",{k}={v}" for k, v in labels.items())


def assigned(instance: ServiceProcess) -> float:
    return metric(instance.metrics(), "emeuse_kernel_assigned_partitions")


def settled(instance: ServiceProcess, at_risk_here: int) -> dict[str, float]:
    """The gauges once every event sent is in them: the same three scrapes in a row."""
    deadline = time.monotonic() + 90
    seen: list[dict[str, float]] = []
    while time.monotonic() < deadline:
        now = gauges(instance)
        seen = [*seen[-2:], now]
        risk = now[shown("emeuse_coordination_people_at_risk", {"territory": TERRITORY})]
        if risk >= at_risk_here and len(seen) == 3 and seen[0] == seen[1] == now:
            return now
        time.sleep(2)
    raise AssertionError(f"coordination gauges never settled: {seen}")


def until_equal(expected: dict[str, float], *instances: ServiceProcess) -> dict[str, float]:
    """The instances' summed gauges once they hold every partition between them (the last
    scrape, equal to `expected` or not)."""
    deadline = time.monotonic() + 90
    last: dict[str, float] = {}
    while time.monotonic() < deadline:
        held = [assigned(instance) for instance in instances]
        last = gauges(*instances)
        if sum(held) == PARTITIONS and all(held) and last == expected:
            break
        time.sleep(1)
    return last


def test_an_instance_restarted_or_joined_shows_the_same_gauges_without_a_new_event(
    bootstrap: str, bus: Bus, tmp_path: Path
):
    platform = Platform(bootstrap, tmp_path)
    app_id = f"emeuse-coordination-{uuid.uuid4().hex[:8]}"
    first = platform.services["coordination-1"] = platform.new_process(
        "coordination", "coordination-1", app_id=app_id
    )
    try:
        first.start()
        first.wait_serving()
        people = [random_pseudonym() for _ in range(6)]
        for n, person in enumerate(people):
            # An open critical alert and a fall: at risk, on two axes.
            send(bus, ALERT_RAISED, alert_raised(person, f"al-{person[-6:]}", at(n)), n)
            send(bus, INCIDENT_RAISED, incident(person, f"inc-{person[-6:]}", at(n + 1)), n + 1)
        before = settled(first, len(people))
        counted = gauges(first, which=COUNTED)
        assert counted["emeuse_coordination_timelines_kept"] >= len(people)

        first.stop()
        first.start()
        first.wait_serving()
        assert until_equal(before, first) == before, "gauges after a restart"
        assert at_least(counted, first), "gauges counted again after a restart"

        second = platform.services["coordination-2"] = platform.new_process(
            "coordination", "coordination-2", app_id=app_id
        )
        second.start()
        second.wait_serving()
        assert until_equal(before, first, second) == before, "gauges summed over two instances"
        assert at_least(counted, first, second), "gauges summed over two instances"
        assert 0 < assigned(second) < PARTITIONS
    finally:
        platform.stop_all()
