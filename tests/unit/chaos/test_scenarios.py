"""The fault suite's checkers (tests/chaos): what a correct run gives passes; a lost output,
one written twice (same id, or same meaning under another id) or a wrong one is counted."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from google.protobuf.message import Message

from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    RequestFlagged,
    SlotBooked,
)
from emeuse.home.v1.home_events_pb2 import (
    IncidentAcknowledged,
    IncidentEscalated,
    IncidentOutcome,
    IncidentRaised,
    IncidentResolved,
    NotifiedContact,
    SensorEventReported,
    SensorKind,
)
from emeuse.registry import (
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_ESCALATED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    REQUEST_FLAGGED,
    SLOT_BOOKED,
)
from services.access.scheduling import derived_id as booking_id
from services.home.incidents import derived_id
from tests.chaos import access, home
from tests.chaos.kafka_io import Output
from tests.chaos.scenario import Row, Workload
from tests.chaos.scenarios import SCENARIOS


def output(spec, key: str, event_id: str, message: Message) -> Output:
    return Output(spec.name, 0, 0, key.encode(), event_id, message)


def home_run(workload: Workload) -> dict[str, list[Output]]:
    """What the home service gives for this workload when nothing goes wrong."""
    incidents, answered = workload.expected
    found: dict[str, list[Output]] = {spec.name: [] for spec in home.HOME.outputs}
    for resident, (incident_id, kind) in incidents.items():
        first = NotifiedContact(contact_id=home.FIRST, step=0)
        raised = IncidentRaised(
            incident_id=incident_id,
            resident_pseudonym=resident,
            kind=home.KINDS[kind][2],
            notified=first,
        )
        found[INCIDENT_RAISED.name].append(output(INCIDENT_RAISED, resident, incident_id, raised))
        if resident in answered:
            acknowledged = IncidentAcknowledged(
                incident_id=incident_id, resident_pseudonym=resident, contact_id=home.FIRST
            )
            resolved = IncidentResolved(
                incident_id=incident_id,
                resident_pseudonym=resident,
                outcome=IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME,
            )
            found[INCIDENT_ACKNOWLEDGED.name].append(
                output(
                    INCIDENT_ACKNOWLEDGED,
                    resident,
                    derived_id(incident_id, "acknowledged"),
                    acknowledged,
                )
            )
            found[INCIDENT_RESOLVED.name].append(
                output(INCIDENT_RESOLVED, resident, derived_id(incident_id, "resolved"), resolved)
            )
            continue
        for step, contact in home.STEPS.items():
            escalated = IncidentEscalated(
                incident_id=incident_id,
                resident_pseudonym=resident,
                kind=home.KINDS[kind][2],
                notified=NotifiedContact(contact_id=contact, step=step),
            )
            found[INCIDENT_ESCALATED.name].append(
                output(
                    INCIDENT_ESCALATED,
                    resident,
                    derived_id(incident_id, "escalated", str(step)),
                    escalated,
                )
            )
    return found


def access_run(workload: Workload) -> dict[str, list[Output]]:
    booked, flagged = workload.expected
    found: dict[str, list[Output]] = {spec.name: [] for spec in access.ACCESS.outputs}
    for request_id, slot_id in booked.items():
        message = SlotBooked(request_id=request_id, slot_id=slot_id, territory="55")
        event_id = booking_id(request_id, slot_id, "0")
        found[SLOT_BOOKED.name].append(output(SLOT_BOOKED, "55", event_id, message))
    for request_id in flagged:
        message = RequestFlagged(request_id=request_id, territory="55")
        event_id = booking_id(request_id, "flagged")
        found[REQUEST_FLAGGED.name].append(output(REQUEST_FLAGGED, "55", event_id, message))
    return found


RUNS = {"home": home_run, "access": access_run}


def faults(rows: list[Row]) -> list[tuple[int, int, int, int]]:
    return [(r.lost, r.dup_by_id, r.dup_by_meaning, r.unexpected) for r in rows]


@pytest.mark.parametrize("service", sorted(RUNS))
def test_a_correct_run_passes_with_every_expected_output_seen(service):
    scenario = SCENARIOS[service]
    workload = scenario.build(random.Random(3), 30, 600)
    found = RUNS[service](workload)
    rows = scenario.check(workload, found)
    assert all(row.ok for row in rows), rows
    assert [r.seen for r in rows] == [r.expected for r in rows]
    assert sum(r.expected for r in rows) == workload.outputs_expected > 0
    assert sum(len(v) for v in found.values()) == workload.outputs_expected


@pytest.mark.parametrize("service", sorted(RUNS))
def test_a_lost_output_and_one_written_twice_are_counted(service):
    scenario = SCENARIOS[service]
    workload = scenario.build(random.Random(4), 30, 600)
    found = RUNS[service](workload)
    topic = scenario.outputs[0].name
    lost = found[topic].pop(0)
    twice = found[topic][0]
    found[topic].append(twice)
    rows = scenario.check(workload, found)
    assert faults(rows)[0] == (1, 1, 1, 0), lost
    assert all(row.ok for row in rows[1:])


@pytest.mark.parametrize("service", sorted(RUNS))
def test_the_same_output_under_another_id_is_a_duplicate_by_meaning(service):
    scenario = SCENARIOS[service]
    workload = scenario.build(random.Random(5), 30, 600)
    found = RUNS[service](workload)
    topic = scenario.outputs[1].name
    found[topic].append(replace(found[topic][0], event_id="another-id"))
    rows = scenario.check(workload, found)
    assert faults(rows)[1] == (0, 0, 1, 1)


def test_an_escalation_to_the_wrong_contact_is_unexpected():
    workload = home.build(random.Random(6), 30, 600)
    found = home_run(workload)
    wrong = found[INCIDENT_ESCALATED.name][0]
    wrong.message.notified.contact_id = "samu-54"
    rows = home.check(workload, found)
    assert faults(rows)[1] == (0, 0, 0, 1)


def test_a_request_booked_in_another_slot_is_unexpected():
    workload = access.build(random.Random(7), 0, 600)
    found = access_run(workload)
    found[SLOT_BOOKED.name][0].message.slot_id = "slot-gp-chaos-55-999-000"
    rows = access.check(workload, found)
    assert faults(rows)[0] == (0, 0, 0, 1)


def test_the_workloads_send_alarms_and_requests_twice():
    # What the checks above hold the services to: the second report of an alarm and a
    # request sent again are in the stream, and expect no output of their own.
    workload = home.build(random.Random(8), 60, 1200)
    incidents, _ = workload.expected
    alarms = [
        report
        for _, _, value, _ in workload.stream
        if (report := SensorEventReported.FromString(value)).kind
        in (SensorKind.SENSOR_KIND_FALL, SensorKind.SENSOR_KIND_PANIC_BUTTON)
    ]
    assert len(alarms) > len(incidents) == len({a.resident_pseudonym for a in alarms})
    asked = access.build(random.Random(8), 0, 1200)
    ids = [ConsultationRequested.FromString(value).request_id for _, _, value, _ in asked.stream]
    assert len(set(ids)) < len(ids)
