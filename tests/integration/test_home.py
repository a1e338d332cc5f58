"""Home support end to end on the real broker: enrolment over gRPC, sensor events over
Kafka, escalation contact by contact to the SAMU, acknowledgement, a worker killed in the
middle of a chain, missed visits, the offline-devices gauge across a restart."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from emeuse.home.v1 import home_service_pb2 as api
from emeuse.home.v1 import home_service_pb2_grpc as api_grpc
from emeuse.home.v1.home_events_pb2 import (
    HomeConfigured,
    HomeContact,
    SensorEventReported,
    SensorKind,
)
from emeuse.registry import (
    CONSULTATION_REQUESTED,
    HOME_CONFIGURED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_ACTION_REQUESTED,
    INCIDENT_ESCALATED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    PARTITIONS,
    SENSOR_EVENT_REPORTED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import new_id, record
from tests.integration.harness import Platform, ServiceProcess, metric

DAUGHTER, NEIGHBOUR, NURSE = "family-0001", "neighbour-0002", "ide-0107"
PROVIDER, AIDES, AIDE = "provider-0042", "ssiad-0055", "aide-0311"
SAMU = "samu-55"


class Home:
    """The home gRPC API as a coordinator's or an aide's tool calls it."""

    def __init__(self, platform: Platform, target: str | None = None) -> None:
        self.platform = platform
        self.target = target

    def __getattr__(self, method: str) -> Any:
        def call(request: Any, timeout: float = 20) -> Any:
            target = self.target or self.platform.services["home"].grpc_target
            with grpc.insecure_channel(target) as channel:
                stub = api_grpc.HomeServiceStub(channel)
                return getattr(stub, method)(request, timeout=timeout, metadata=self.platform.auth)

        return call


def contact(contact_id: str, role: str, ack: str) -> dict:
    return {"contact_id": contact_id, "role": f"CONTACT_ROLE_{role}", "acknowledge_within": ack}


def enrol(
    platform: Platform,
    resident: str,
    ack: str = "3s",
    target: str | None = None,
    territory: str = "55",
    offline_after: str = "",
) -> None:
    thresholds = {"device_offline_after": offline_after} if offline_after else {}
    home = json_format.ParseDict(
        {
            "resident_pseudonym": resident,
            "gir_level": 4,
            "devices": [
                {"device_id": "fall-01", "kind": "DEVICE_KIND_FALL_DETECTOR"},
                {"device_id": "motion-01", "kind": "DEVICE_KIND_MOTION_SENSOR"},
            ],
            "contacts": [
                contact(DAUGHTER, "FAMILY_CAREGIVER", ack),
                contact(NEIGHBOUR, "NEIGHBOUR", ack),
            ],
            "device_provider": contact(PROVIDER, "DEVICE_PROVIDER", "3600s"),
            "aide_service": contact(AIDES, "HOME_AIDE_SERVICE", ack),
            "thresholds": thresholds,
        },
        HomeConfigured(),
    )
    try:
        response = Home(platform, target).EnrollHome(
            api.EnrollHomeRequest(home=home, territory=territory, experiment_id="exp-domicile")
        )
    except grpc.RpcError as error:
        # Accepted but not applied in time: the partition moved (an instance just joined)
        # and its new owner applies it. The API says so; the status shows when it is.
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            try:
                status = Home(platform, target).GetHomeStatus(
                    api.GetHomeStatusRequest(resident_pseudonym=resident)
                )
                if status.enrolled:
                    assert status.configuration.version == 1
                    return
            except grpc.RpcError:
                pass  # still rebalancing
            time.sleep(0.3)
        raise AssertionError("enrolment accepted but never applied") from error
    assert response.version == 1


def sensor_event(resident: str, kind: int, **fields: Any) -> SensorEventReported:
    event = SensorEventReported(
        sensor_event_id=new_id("se"),
        resident_pseudonym=resident,
        device_id="fall-01",
        kind=kind,
        **fields,
    )
    event.occurred_at.GetCurrentTime()
    return event


def a_fall(bus, resident: str) -> dict:
    bus.send(
        *record(
            SENSOR_EVENT_REPORTED,
            sensor_event(resident, SensorKind.SENSOR_KIND_FALL, confidence=0.95),
            resident,
        )
    )
    [raised] = bus.wait_for(INCIDENT_RAISED.name, of(resident))
    return raised


def of(resident: str):
    return lambda r: r["key"] == resident


def records(bus, spec, resident: str) -> list[dict]:
    return [r for r in bus.all_records(spec.name, 1) if r["key"] == resident]


def grpc_error(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    return caught.value


def test_a_fall_nobody_answers_goes_contact_by_contact_to_the_samu(platform, bus):
    resident = random_pseudonym()
    enrol(platform, resident)
    raised = a_fall(bus, resident)
    event = raised["event"]
    assert event["kind"] == "INCIDENT_KIND_FALL"
    assert event["notified"]["contact_id"] == DAUGHTER
    assert event["falls_in_last_30_days"] == 1
    assert raised["headers"]["ce_territory"] == "55"

    steps = bus.wait_for(INCIDENT_ESCALATED.name, of(resident), count=2, timeout=60)
    notified = [
        (s["event"]["notified"]["contact_id"], s["event"]["notified"]["role"]) for s in steps
    ]
    assert notified == [
        (NEIGHBOUR, "CONTACT_ROLE_NEIGHBOUR"),
        (SAMU, "CONTACT_ROLE_EMERGENCY_SERVICE"),
    ]
    home = Home(platform)
    status = home.GetHomeStatus(api.GetHomeStatusRequest(resident_pseudonym=resident))
    [incident] = status.open_incidents
    assert [n.contact_id for n in incident.notified] == [DAUGHTER, NEIGHBOUR, SAMU]
    assert not incident.HasField("next_escalation_at")  # the chain ended at the SAMU
    # ...and says so: nothing further happens by itself.
    assert incident.status == api.INCIDENT_STATUS_ESCALATED_TO_SAMU
    assert [s["event"].get("chain_exhausted", False) for s in steps] == [False, True]
    # The coordinator's list of open incidents in the Meuse shows it.
    listed, token = [], ""
    while True:
        page = home.ListOpenIncidents(
            api.ListOpenIncidentsRequest(
                territory="55", kind="INCIDENT_KIND_FALL", page_size=2, page_token=token
            )
        )
        listed += [i.incident_id for i in page.incidents]
        token = page.next_page_token
        if not token:
            break
    assert event["incident_id"] in listed
    assert len(listed) == len(set(listed))

    # The SAMU took her to hospital: resolved with an injury, for the access service.
    resolved = home.ResolveIncident(
        api.ResolveIncidentRequest(
            resident_pseudonym=resident,
            incident_id=event["incident_id"],
            contact_id=SAMU,
            outcome="INCIDENT_OUTCOME_SENT_TO_HOSPITAL",
            injury=True,
        )
    ).incident
    assert resolved.status == api.INCIDENT_STATUS_RESOLVED
    [closed] = bus.wait_for(INCIDENT_RESOLVED.name, of(resident))
    assert closed["event"]["outcome"] == "INCIDENT_OUTCOME_SENT_TO_HOSPITAL"
    assert closed["event"]["injury"] is True
    assert closed["event"]["kind"] == "INCIDENT_KIND_FALL"
    metrics = platform.services["home"].metrics()
    assert 'emeuse_home_incidents_total{kind="fall",territory="55"}' in metrics
    assert 'emeuse_home_emergency_escalations_total{kind="fall",territory="55"}' in metrics
    assert "emeuse_home_incident_escalation_depth_count" in metrics


def test_the_contact_who_acknowledges_stops_the_chain(platform, bus):
    resident = random_pseudonym()
    enrol(platform, resident)
    home = Home(platform)
    incident_id = a_fall(bus, resident)["event"]["incident_id"]
    [step] = bus.wait_for(INCIDENT_ESCALATED.name, of(resident), timeout=30)
    assert step["event"]["notified"]["contact_id"] == NEIGHBOUR

    denied = grpc_error(
        home.AcknowledgeIncident,
        api.AcknowledgeIncidentRequest(
            resident_pseudonym=resident, incident_id=incident_id, contact_id="family-9999"
        ),
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    missing = grpc_error(
        home.AcknowledgeIncident,
        api.AcknowledgeIncidentRequest(
            resident_pseudonym=resident, incident_id="no-such-incident", contact_id=NEIGHBOUR
        ),
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    acknowledged = home.AcknowledgeIncident(
        api.AcknowledgeIncidentRequest(
            resident_pseudonym=resident, incident_id=incident_id, contact_id=NEIGHBOUR
        )
    ).incident
    assert acknowledged.status == api.INCIDENT_STATUS_ACKNOWLEDGED
    assert acknowledged.acknowledged_by == NEIGHBOUR
    [ack] = bus.wait_for(INCIDENT_ACKNOWLEDGED.name, of(resident))
    assert ack["event"]["step"] == 1

    time.sleep(6)  # twice the neighbour's delay: the SAMU was never called
    steps = records(bus, INCIDENT_ESCALATED, resident)
    assert [s["event"]["notified"]["contact_id"] for s in steps] == [NEIGHBOUR]

    unspecified = grpc_error(
        home.ResolveIncident,
        api.ResolveIncidentRequest(
            resident_pseudonym=resident, incident_id=incident_id, contact_id=NEIGHBOUR
        ),
    )
    assert unspecified.code() == grpc.StatusCode.INVALID_ARGUMENT
    home.ResolveIncident(
        api.ResolveIncidentRequest(
            resident_pseudonym=resident,
            incident_id=incident_id,
            contact_id=NEIGHBOUR,
            outcome="INCIDENT_OUTCOME_HANDLED_AT_HOME",
        )
    )
    status = home.GetHomeStatus(api.GetHomeStatusRequest(resident_pseudonym=resident))
    assert not status.open_incidents
    # Resolved already, with another outcome: refused, never a silent OK.
    otherwise = grpc_error(
        home.ResolveIncident,
        api.ResolveIncidentRequest(
            resident_pseudonym=resident,
            incident_id=incident_id,
            contact_id=NEIGHBOUR,
            outcome="INCIDENT_OUTCOME_SENT_TO_HOSPITAL",
            injury=True,
        ),
    )
    assert otherwise.code() == grpc.StatusCode.FAILED_PRECONDITION
    too_late = grpc_error(
        home.AcknowledgeIncident,
        api.AcknowledgeIncidentRequest(
            resident_pseudonym=resident, incident_id=incident_id, contact_id=DAUGHTER
        ),
    )
    assert too_late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "emeuse_home_incident_time_to_acknowledge_seconds_count" in (
        platform.services["home"].metrics()
    )


def test_a_worker_killed_in_the_middle_of_a_chain_continues_it_exactly_once(platform, bus):
    resident = random_pseudonym()
    enrol(platform, resident, ack="10s")
    raised = a_fall(bus, resident)
    incident_id = raised["event"]["incident_id"]
    # The daughter did not answer: the neighbour is told, then the worker dies before the
    # SAMU's turn.
    [first] = bus.wait_for(INCIDENT_ESCALATED.name, of(resident), timeout=30)
    assert first["event"]["notified"]["contact_id"] == NEIGHBOUR
    time.sleep(2)  # past the changelog flush (broker_commit_interval): the step is stored

    home = platform.services["home"]
    home.stop(signal.SIGKILL)
    home.start()
    home.wait_serving()

    steps = bus.wait_for(INCIDENT_ESCALATED.name, of(resident), count=2, timeout=90)
    assert [s["event"]["notified"]["contact_id"] for s in steps] == [NEIGHBOUR, SAMU]
    time.sleep(12)  # longer than a delay: nothing more, no step twice
    steps = records(bus, INCIDENT_ESCALATED, resident)
    assert {s["event"]["incident_id"] for s in steps} == {incident_id}
    assert [s["event"]["notified"]["step"] for s in steps] == [1, 2]  # each step once
    assert [s["event"]["notified"]["contact_id"] for s in steps].count(SAMU) == 1
    assert len({s["headers"]["ce_id"] for s in steps}) == 2
    # The home's experiment, not the service's default, on what its timers caused.
    assert {s["headers"]["ce_experiment"] for s in steps} == {"exp-domicile"}
    raised_again = records(bus, INCIDENT_RAISED, resident)
    assert len({r["event"]["incident_id"] for r in raised_again}) == 1
    # The steps are taken by the home's timer itself, none asked for on the action topic.
    assert records(bus, INCIDENT_ACTION_REQUESTED, resident) == []
    status = Home(platform).GetHomeStatus(api.GetHomeStatusRequest(resident_pseudonym=resident))
    [incident] = status.open_incidents
    assert [n.contact_id for n in incident.notified] == [DAUGHTER, NEIGHBOUR, SAMU]


def test_a_missed_visit_raises_an_incident_to_the_aide_service(platform, bus):
    resident = random_pseudonym()
    enrol(platform, resident, ack="600s")
    home = Home(platform)
    request = api.PlanVisitRequest(
        resident_pseudonym=resident, visit_id=new_id("visit-1"), aide_id=AIDE
    )
    request.planned_start.FromDatetime(datetime.now(UTC) + timedelta(seconds=2))
    request.planned_duration.FromSeconds(45 * 60)
    request.missed_after.FromSeconds(3)
    planned = home.PlanVisit(request).visit
    assert planned.status == api.VISIT_STATUS_PLANNED

    [missed] = bus.wait_for(INCIDENT_RAISED.name, of(resident), timeout=30)
    assert missed["event"]["kind"] == "INCIDENT_KIND_VISIT_MISSED"
    assert missed["event"]["visit_id"] == planned.visit_id
    assert missed["event"]["notified"]["contact_id"] == AIDES
    status = home.GetHomeStatus(api.GetHomeStatusRequest(resident_pseudonym=resident))
    [visit] = status.visits
    assert visit.status == api.VISIT_STATUS_MISSED

    # The aide turns up late: the visit goes on, the incident nobody took is cleared.
    started = home.CheckIn(
        api.CheckInRequest(resident_pseudonym=resident, visit_id=planned.visit_id, aide_id=AIDE)
    ).visit
    assert started.status == api.VISIT_STATUS_IN_PROGRESS
    assert started.lateness.ToTimedelta() >= timedelta(seconds=3)
    [cleared] = bus.wait_for(INCIDENT_RESOLVED.name, of(resident))
    assert cleared["event"]["outcome"] == "INCIDENT_OUTCOME_CLEARED"
    ended = home.CheckOut(
        api.CheckOutRequest(resident_pseudonym=resident, visit_id=planned.visit_id, aide_id=AIDE)
    ).visit
    assert ended.status == api.VISIT_STATUS_DONE
    assert ended.HasField("duration")
    metrics = platform.services["home"].metrics()
    assert 'emeuse_home_visits_missed_total{territory="55"}' in metrics
    assert "emeuse_home_visit_duration_seconds_count" in metrics


def test_enrolment_and_contacts_are_checked_and_changes_apply_to_the_next_incident(platform, bus):
    resident = random_pseudonym()
    home = Home(platform)
    stranger = grpc_error(
        home.UpdateContacts,
        api.UpdateContactsRequest(resident_pseudonym=resident),
    )
    assert stranger.code() == grpc.StatusCode.FAILED_PRECONDITION
    enrol(platform, resident, ack="600s")
    again = grpc_error(
        home.EnrollHome,
        api.EnrollHomeRequest(
            home=HomeConfigured(resident_pseudonym=resident, gir_level=4),
            territory="55",
            experiment_id="exp-domicile",
        ),
    )
    assert again.code() == grpc.StatusCode.INVALID_ARGUMENT  # no contacts: checked first
    nameless = grpc_error(
        home.UpdateContacts,
        api.UpdateContactsRequest(
            resident_pseudonym=resident,
            contacts=[
                json_format.ParseDict(
                    contact("Marie Dupont", "FAMILY_CAREGIVER", "60s"), HomeContact()
                )
            ],
        ),
    )
    assert nameless.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "contact_id holds a direct identifier (name-shaped value)" in nameless.details()

    changed = home.UpdateContacts(
        api.UpdateContactsRequest(
            resident_pseudonym=resident,
            contacts=[json_format.ParseDict(contact(NURSE, "NURSE", "600s"), HomeContact())],
        )
    )
    assert changed.version == 2
    raised = a_fall(bus, resident)
    assert raised["event"]["notified"]["contact_id"] == NURSE
    assert raised["event"]["chain_length"] == 2  # the nurse, then the SAMU


def test_an_enrolment_delivered_again_changes_nothing(platform, bus):
    resident = random_pseudonym()
    enrol(platform, resident, ack="600s")
    home = Home(platform)
    nurse = [json_format.ParseDict(contact(NURSE, "NURSE", "600s"), HomeContact())]
    changed = home.UpdateContacts(
        api.UpdateContactsRequest(resident_pseudonym=resident, contacts=nurse)
    )
    assert changed.version == 2
    # The enrolment's record comes again, as after a rebalance or a crash: it is not
    # applied again (no version 3, the daughter not back), so the next change is version 3.
    bus.replay(HOME_CONFIGURED.name, resident)
    # (The same contacts asked again change nothing: the answer the change had.)
    same = home.UpdateContacts(
        api.UpdateContactsRequest(resident_pseudonym=resident, contacts=nurse)
    )
    assert same == changed
    sooner = [json_format.ParseDict(contact(NURSE, "NURSE", "300s"), HomeContact())]
    again = home.UpdateContacts(
        api.UpdateContactsRequest(resident_pseudonym=resident, contacts=sooner)
    )
    assert again.version == 3
    status = home.GetHomeStatus(api.GetHomeStatusRequest(resident_pseudonym=resident))
    assert [c.contact_id for c in status.configuration.contacts] == [NURSE]


def test_home_logs_name_no_one(platform, bus):
    resident = random_pseudonym()
    enrol(platform, resident)
    a_fall(bus, resident)
    text = platform.services["home"].log_path.read_text()
    assert resident not in text
    logged = platform.services["home"].log_lines()
    lines = [line for line in logged if line.get("event") == "incident.raised"]
    assert lines and all("incident_id" in line for line in lines)


def test_two_instances_each_answer_for_every_home(platform, bus):
    second = platform.new_process("home", name="home-2")
    second.start()
    try:
        second.wait_serving()
        targets = (platform.services["home"].grpc_target, second.grpc_target)
        residents = [random_pseudonym() for _ in range(8)]
        # Enrolled through either instance: the home's owner applies it and answers.
        for index, resident in enumerate(residents):
            enrol(platform, resident, ack="600s", target=targets[index % 2])
        incident_of = {
            resident: a_fall(bus, resident)["event"]["incident_id"] for resident in residents
        }
        for target in targets:
            home = Home(platform, target)
            listed, token = [], ""
            while True:
                page = home.ListOpenIncidents(
                    api.ListOpenIncidentsRequest(territory="55", page_size=3, page_token=token)
                )
                listed += [
                    i.incident_id for i in page.incidents if i.resident_pseudonym in incident_of
                ]
                token = page.next_page_token
                if not token:
                    break
            assert sorted(listed) == sorted(incident_of.values()), target
        for index, resident in enumerate(residents):
            acknowledged = (
                Home(platform, targets[(index + 1) % 2])
                .AcknowledgeIncident(
                    api.AcknowledgeIncidentRequest(
                        resident_pseudonym=resident,
                        incident_id=incident_of[resident],
                        contact_id=DAUGHTER,
                    )
                )
                .incident
            )
            assert acknowledged.status == api.INCIDENT_STATUS_ACKNOWLEDGED
        # An aide's check-in and check-out reach the owner whichever instance they call.
        for index, resident in enumerate(residents[:4]):
            first, other = targets[index % 2], targets[(index + 1) % 2]
            request = api.PlanVisitRequest(resident_pseudonym=resident, aide_id=AIDE)
            request.planned_start.FromDatetime(datetime.now(UTC))
            request.planned_duration.FromSeconds(1800)
            visit_id = Home(platform, first).PlanVisit(request).visit.visit_id
            Home(platform, other).CheckIn(
                api.CheckInRequest(resident_pseudonym=resident, visit_id=visit_id, aide_id=AIDE)
            )
            ended = (
                Home(platform, first)
                .CheckOut(
                    api.CheckOutRequest(
                        resident_pseudonym=resident, visit_id=visit_id, aide_id=AIDE
                    )
                )
                .visit
            )
            assert ended.status == api.VISIT_STATUS_DONE
    finally:
        assert second.stop() is not None


def test_a_fall_with_injury_and_repeated_falls_ask_access_for_a_gp(platform, bus):
    resident = random_pseudonym()
    enrol(platform, resident, ack="60s")
    home = Home(platform)
    first = a_fall(bus, resident)["event"]["incident_id"]
    home.AcknowledgeIncident(
        api.AcknowledgeIncidentRequest(
            resident_pseudonym=resident, incident_id=first, contact_id=DAUGHTER
        )
    )
    home.ResolveIncident(
        api.ResolveIncidentRequest(
            resident_pseudonym=resident,
            incident_id=first,
            contact_id=DAUGHTER,
            outcome="INCIDENT_OUTCOME_HANDLED_AT_HOME",
            injury=True,
        )
    )
    # Hurt but kept at home: a GP the same day.
    [hurt] = bus.wait_for(CONSULTATION_REQUESTED.name, lambda r: r["event"]["cause_id"] == first)
    assert hurt["event"]["patient_pseudonym"] == resident
    assert hurt["event"]["reason_code"] == "home.fall.injury"
    assert hurt["event"]["urgency"] == "URGENCY_SAME_DAY"
    assert hurt["key"] == "55"

    # A second fall in 30 days: a GP review within 7 days for repeated falls.
    bus.send(
        *record(
            SENSOR_EVENT_REPORTED,
            sensor_event(resident, SensorKind.SENSOR_KIND_FALL, confidence=0.9),
            resident,
        )
    )
    second = bus.wait_for(INCIDENT_RAISED.name, of(resident), count=2)[-1]["event"]
    assert second["falls_in_last_30_days"] == 2
    [again] = bus.wait_for(
        CONSULTATION_REQUESTED.name, lambda r: r["event"]["cause_id"] == second["incident_id"]
    )
    assert again["event"]["reason_code"] == "home.fall.repeated"
    assert again["event"]["urgency"] == "URGENCY_WITHIN_7_DAYS"


# Territory 52: the other tests enrol their homes in 55, so only this test's homes count there
# (the shared platform's timers may change the other territories' figures at any moment).
OFFLINE_HERE = {"territory": "52"}


def offline_devices(home: ServiceProcess) -> tuple[float, float]:
    """(devices offline in territory 52, partitions held), from one scrape of /metrics."""
    text = home.metrics()
    return (
        metric(text, "emeuse_home_devices_offline", **OFFLINE_HERE),
        metric(text, "emeuse_kernel_assigned_partitions"),
    )


def test_a_restarted_instance_shows_the_same_offline_devices_without_a_new_event(platform):
    residents = [random_pseudonym() for _ in range(3)]
    for resident in residents:
        # Two devices each, never heard from: offline two seconds after the enrolment.
        enrol(platform, resident, ack="600s", territory="52", offline_after="2s")
    home = platform.services["home"]
    expected = 2 * len(residents)
    deadline = time.monotonic() + 60
    while offline_devices(home)[0] < expected and time.monotonic() < deadline:
        time.sleep(1)
    before, _ = offline_devices(home)
    assert before == expected

    home.stop()
    home.start()
    home.wait_serving()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        shown, held = offline_devices(home)
        if held == PARTITIONS and shown == before:
            break
        time.sleep(1)
    assert (shown, held) == (before, PARTITIONS), "offline devices after the restart"
