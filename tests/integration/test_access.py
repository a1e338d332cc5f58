"""Access end to end on the real broker: directory of practitioners and places, slots,
requests from gRPC, Kafka and chronic alerts, matching without double booking across two
instances, cancellations, flags past the booking delay, and the consultation lifecycle."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import json_format, unknown_fields

from emeuse.access.v1 import access_service_pb2 as api
from emeuse.access.v1 import access_service_pb2_grpc as api_grpc
from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    ConsultationStatus,
    Modality,
    WithdrawalReason,
)
from emeuse.chronic.v1 import chronic_service_pb2 as chronic_api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as chronic_grpc
from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, ReadingRecorded
from emeuse.registry import (
    CONSULTATION_REQUESTED,
    CONSULTATION_STATUS_CHANGED,
    PLACE_REGISTERED,
    REQUEST_FLAGGED,
    REQUEST_WITHDRAWN,
    SLOT_BOOKED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import CARE_TEAM, headers_for, new_id
from tests.integration.harness import Client, Platform, metric, wait_for_care_plan

# Requests a test leaves waiting are withdrawn after it (conftest): the next test's slots
# in the territory go to its own requests.
pytestmark = pytest.mark.usefixtures("line_left_as_found")

BAR_LE_DUC = {"commune": "55029", "latitude": 48.77, "longitude": 5.16}
VERDUN = {"commune": "55545", "latitude": 49.16, "longitude": 5.38}


def again(call, request, timeout: float = 30):
    """An idempotent write, asked again while a rebalance moves its territory (the owner
    that took it may answer DEADLINE_EXCEEDED: accepted, applied by the next owner)."""
    for attempt in range(3):
        try:
            return call(request, timeout=timeout)
        except grpc.RpcError as error:
            if attempt == 2 or error.code() not in (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.UNAVAILABLE,
            ):
                raise
    raise AssertionError("unreachable")


def access(platform: Platform, target: str | None = None) -> Client:
    target = target or platform.services["access"].grpc_target
    return Client(target, api_grpc.AccessServiceStub, platform.auth)


def register(
    client: Client,
    profession: str,
    specialty: str = "",
    line: str = "FIRST",
    modalities: tuple[str, ...] = ("VIDEO", "NURSE_ASSISTED"),
    **place,
):
    practitioner_id = f"pract-{uuid.uuid4().hex[:12]}"
    message = json_format.ParseDict(
        {
            "practitioner_id": practitioner_id,
            "territory": "55",
            "profession": f"PROFESSION_{profession}",
            "specialty": specialty,
            "care_line": f"CARE_LINE_{line}",
            "modalities": [f"MODALITY_{m}" for m in modalities],
            "place": {"kind": "PLACE_KIND_HEALTH_CENTRE", **(place or BAR_LE_DUC)},
            "active": True,
        },
        api.RegisterPractitionerRequest().practitioner,
    )
    again(
        client.RegisterPractitioner,
        api.RegisterPractitionerRequest(practitioner=message, experiment_id="exp-teleconsult"),
    )
    return practitioner_id


def publish_slots(client: Client, practitioner_id: str, count: int, start: datetime) -> list[str]:
    request = api.PublishAvailabilityRequest(experiment_id="exp-teleconsult")
    request.availability.practitioner_id = practitioner_id
    request.availability.territory = "55"
    for index in range(count):
        slot = request.availability.slots.add()
        slot.start.FromDatetime(start + timedelta(minutes=20 * index))
        slot.duration.FromSeconds(15 * 60)
    return list(again(client.PublishAvailability, request).slot_ids)


def consultation(patient: str, specialty: str = "", **fields) -> ConsultationRequested:
    data = {
        "request_id": new_id("req"),
        "territory": "55",
        "patient_pseudonym": patient,
        "urgency": "URGENCY_WITHIN_7_DAYS",
        "profession": "PROFESSION_SPECIALIST" if specialty else "PROFESSION_GP",
        "specialty": specialty,
        "reason_code": "follow-up.chronic",
        "requested_by": "REQUESTER_ROLE_NURSE",
        "requester_id": "ide-ehpad-0107",
        "place": {"kind": "PLACE_KIND_EHPAD", **VERDUN, "modalities": ["MODALITY_NURSE_ASSISTED"]},
        "requested_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    data.update(fields)
    return json_format.ParseDict(data, ConsultationRequested())


def ask(client: Client, request: ConsultationRequested) -> api.Request:
    # The same request_id asked again is the same request (idempotent).
    answer = again(
        client.RequestConsultation,
        api.RequestConsultationRequest(request=request, experiment_id="exp-teleconsult"),
    )
    return answer.request


def open_requests(client: Client, territory: str = "55", **filters) -> list[api.Request]:
    found, token = [], ""
    while True:
        page = again(
            client.ListOpenRequests,
            api.ListOpenRequestsRequest(
                territory=territory, page_size=100, page_token=token, **filters
            ),
        )
        found += list(page.requests)
        token = page.next_page_token
        if not token:
            return found


def withdraw_waiting(client: Client, territory: str, keep: Collection[str] = ()) -> None:
    """A coordinator withdraws the requests waiting in the territory's line, but those in
    `keep`: each would take the next slot a later test, or a simulated practitioner,
    publishes in the territory."""
    for _ in range(10):  # a withdrawal is applied through the bus: asked again, if listed
        waiting = [
            r.request.request_id
            for r in open_requests(client, territory)
            if r.request.request_id not in keep
        ]
        if not waiting:
            return
        with ThreadPoolExecutor(max_workers=8) as pool:  # a test may leave 150 waiting
            list(pool.map(lambda request_id: withdraw(client, territory, request_id), waiting))
    raise AssertionError(f"requests still waiting in {territory} after ten withdrawals")


def withdraw(client: Client, territory: str, request_id: str) -> None:
    # One booked meanwhile is refused (FAILED_PRECONDITION): it waits no more.
    with contextlib.suppress(grpc.RpcError):
        client.WithdrawRequest(
            api.WithdrawRequestRequest(
                territory=territory,
                request_id=request_id,
                reason=WithdrawalReason.WITHDRAWAL_REASON_COORDINATOR_DECISION,
            )
        )


def test_a_critical_chronic_alert_becomes_an_urgent_request_that_gets_booked(platform, bus):
    client = access(platform)
    # Immediate GP requests of earlier tests may be waiting: enough GPs with a slot within
    # the next two hours (an immediate request's reach) for all of them, and ours.
    waiting = len(open_requests(client, urgency="URGENCY_IMMEDIATE"))
    gps = [register(client, "GP") for _ in range(waiting + 3)]
    for gp in gps:
        publish_slots(client, gp, 1, datetime.now(UTC) + timedelta(minutes=30))

    patient = random_pseudonym()
    chronic = Client(
        platform.services["chronic"].grpc_target, chronic_grpc.ChronicServiceStub, platform.auth
    )
    plan = json_format.ParseDict(
        {
            "patient_pseudonym": patient,
            "care_plan_id": new_id("cp"),
            "programme": "MONITORING_PROGRAMME_ANTICOAGULATION",
            "thresholds": [
                {
                    "loinc_code": "34714-6",
                    "unit": "{INR}",
                    "low": 2,
                    "high": 3,
                    "critical_low": 1.5,
                    "critical_high": 5,
                    "expected_every": "604800s",
                }
            ],
            "care_team": CARE_TEAM,
            "acknowledge_within": "1800s",
        },
        CarePlanUpdated(),
    )
    chronic.EnrollPatient(
        chronic_api.EnrollPatientRequest(care_plan=plan, territory="55", experiment_id="exp-x")
    )
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    reading = ReadingRecorded(
        reading_id=new_id("inr"),
        patient_pseudonym=patient,
        loinc_code="34714-6",
        value=6.4,
        unit="{INR}",
    )
    reading.measured_at.GetCurrentTime()
    chronic.RecordReading(
        chronic_api.RecordReadingRequest(reading=reading, territory="55", experiment_id="exp-x")
    )

    [booked] = bus.wait_for(
        SLOT_BOOKED.name, lambda r: r["event"]["patient_pseudonym"] == patient, timeout=60
    )
    assert booked["key"] == "55"
    assert booked["event"]["practitioner_id"] in gps
    [asked] = bus.wait_for(
        CONSULTATION_REQUESTED.name, lambda r: r["event"]["patient_pseudonym"] == patient
    )
    assert asked["event"]["urgency"] == "URGENCY_IMMEDIATE"
    assert asked["event"]["request_id"] == booked["event"]["request_id"]
    request = client.GetRequest(
        api.GetRequestRequest(request_id=asked["event"]["request_id"], territory="55")
    ).request
    assert request.status == api.REQUEST_STATUS_BOOKED
    assert request.booking.practitioner_id == booked["event"]["practitioner_id"]


def test_two_hundred_requests_racing_for_fifty_slots_on_two_instances(platform, bus):
    first = access(platform)
    second_process = platform.new_process("access", name="access-2")
    second_process.start()
    try:
        second_process.wait_serving()
        second = access(platform, second_process.grpc_target)
        specialty = f"cardio-{uuid.uuid4().hex[:8]}"
        cardiologist = register(first, "SPECIALIST", specialty)
        slots = publish_slots(first, cardiologist, 50, datetime.now(UTC) + timedelta(days=1))
        assert len(set(slots)) == 50

        requests = [consultation(random_pseudonym(), specialty) for _ in range(200)]
        # Half over gRPC, through both instances at once; half straight onto Kafka.
        with ThreadPoolExecutor(max_workers=16) as pool:
            for request in requests[100:]:
                bus.send(
                    CONSULTATION_REQUESTED.name,
                    b"55",
                    request.SerializeToString(),
                    headers_for(CONSULTATION_REQUESTED, request.patient_pseudonym),
                )
            answers = list(
                pool.map(
                    lambda pair: ask((first, second)[pair[0] % 2], pair[1]),
                    enumerate(requests[:100]),
                )
            )
        assert {a.status for a in answers} <= {
            api.REQUEST_STATUS_BOOKED,
            api.REQUEST_STATUS_WAITING,
        }

        ours = {r.request_id for r in requests}
        bus.wait_for(
            SLOT_BOOKED.name, lambda r: r["event"]["request_id"] in ours, count=50, timeout=90
        )
        booked = [
            r for r in bus.all_records(SLOT_BOOKED.name, 2) if r["event"]["request_id"] in ours
        ]
        # Exactly 50 bookings: no slot twice, no request twice.
        assert len(booked) == 50
        assert len({b["event"]["slot_id"] for b in booked}) == 50
        assert len({b["event"]["request_id"] for b in booked}) == 50
        assert {b["event"]["slot_id"] for b in booked} == set(slots)
        line = [r for r in open_requests(second) if r.request.request_id in ours]
        assert len(line) == 150
        assert [r.position for r in line] == sorted(r.position for r in line)

        # A cancellation frees the slot for the next in line.
        cancelled = booked[0]["event"]
        next_in_line = line[0].request.request_id
        gone = first.CancelBooking(
            api.CancelBookingRequest(
                territory="55",
                booking_id=cancelled["booking_id"],
                actor_id=cardiologist,
                reason_code="patient.unavailable",
            )
        ).booking
        assert gone.status == ConsultationStatus.CONSULTATION_STATUS_CANCELLED
        [rebooked] = bus.wait_for(
            SLOT_BOOKED.name, lambda r: r["event"]["request_id"] == next_in_line
        )
        assert rebooked["event"]["slot_id"] == cancelled["slot_id"]
        agenda = second.GetPractitionerAgenda(
            api.GetPractitionerAgendaRequest(territory="55", practitioner_id=cardiologist)
        )
        assert len(agenda.slots) == 50 and agenda.utilisation == 1.0
    finally:
        assert second_process.stop() is not None


def test_a_request_left_unbooked_past_its_delay_is_flagged_to_the_coordinator(platform, bus):
    client = access(platform)
    # Nobody offers this specialty: the immediate request waits, and 3 s later is flagged.
    asked = ask(
        client,
        consultation(
            random_pseudonym(), f"derm-{uuid.uuid4().hex[:8]}", urgency="URGENCY_IMMEDIATE"
        ),
    )
    assert asked.status == api.REQUEST_STATUS_WAITING
    request_id = asked.request.request_id
    [flag] = bus.wait_for(REQUEST_FLAGGED.name, lambda r: r["event"]["request_id"] == request_id)
    assert flag["event"]["coordinator_id"] == "coordination-55"
    assert flag["event"]["urgency"] == "URGENCY_IMMEDIATE"
    now = client.GetRequest(api.GetRequestRequest(request_id=request_id, territory="55")).request
    assert now.flagged and now.status == api.REQUEST_STATUS_WAITING
    flagged = [r.request.request_id for r in open_requests(client, flagged_only=True)]
    assert request_id in flagged
    metrics = platform.services["access"].metrics()
    assert metric(metrics, "emeuse_access_requests_total", territory="55", outcome="flagged") >= 1


def test_a_withdrawn_request_leaves_the_line_audited_and_its_place_goes_to_the_next(platform, bus):
    client = access(platform)
    # Nobody offers this specialty yet: both requests wait, the withdrawn one ahead.
    specialty = f"rheum-{uuid.uuid4().hex[:8]}"
    ahead = ask(client, consultation(random_pseudonym(), specialty))
    behind = ask(client, consultation(random_pseudonym(), specialty))
    withdrawn_id = ahead.request.request_id
    withdraw = api.WithdrawRequestRequest(
        territory="55",
        request_id=withdrawn_id,
        reason=WithdrawalReason.WITHDRAWAL_REASON_PATIENT_DECLINED,
        reason_code="patient.seen_elsewhere",
        actor_id=ahead.request.patient_pseudonym,
    )
    first = client.WithdrawRequest(withdraw)
    # Asked again after a lost answer: the same answer, not an error.
    assert client.WithdrawRequest(withdraw) == first
    assert first.request.status == api.REQUEST_STATUS_WITHDRAWN
    assert first.request.withdrawal_reason == WithdrawalReason.WITHDRAWAL_REASON_PATIENT_DECLINED
    [audit] = bus.wait_for(
        REQUEST_WITHDRAWN.name, lambda r: r["event"]["request_id"] == withdrawn_id
    )
    assert audit["event"]["reason"] == "WITHDRAWAL_REASON_PATIENT_DECLINED"
    assert audit["event"]["reason_code"] == "patient.seen_elsewhere"
    line = [r.request.request_id for r in open_requests(client)]
    assert withdrawn_id not in line and behind.request.request_id in line
    # The slot that would have been the withdrawn request's goes to the next in line.
    specialist = register(client, "SPECIALIST", specialty)
    [slot] = publish_slots(client, specialist, 1, datetime.now(UTC) + timedelta(days=1))
    [booked] = bus.wait_for(SLOT_BOOKED.name, lambda r: r["event"]["slot_id"] == slot)
    assert booked["event"]["request_id"] == behind.request.request_id
    # A booked request is not withdrawn: its booking is cancelled instead.
    with pytest.raises(grpc.RpcError) as refused:
        client.WithdrawRequest(
            api.WithdrawRequestRequest(
                territory="55",
                request_id=behind.request.request_id,
                reason=WithdrawalReason.WITHDRAWAL_REASON_NO_LONGER_NEEDED,
            )
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "CancelBooking" in refused.value.details()


def test_a_consultation_runs_its_lifecycle_and_a_referral_reaches_second_line_care(platform, bus):
    client = access(platform)
    specialty = f"pneumo-{uuid.uuid4().hex[:8]}"
    gp = register(client, "GP", f"gp-{specialty}")
    pneumologist = register(client, "SPECIALIST", specialty, line="SECOND")
    # The GP's slot starts in 5 minutes: outcomes are taken from 15 minutes before a slot.
    start = datetime.now(UTC) + timedelta(minutes=5)
    publish_slots(client, gp, 1, start)
    publish_slots(client, pneumologist, 2, start + timedelta(days=2))
    patient = random_pseudonym()

    # Second-line care without a referral is not matched.
    direct = ask(client, consultation(patient, specialty))
    assert direct.status == api.REQUEST_STATUS_WAITING
    first_line = ask(client, consultation(patient, f"gp-{specialty}", profession="PROFESSION_GP"))
    assert first_line.status == api.REQUEST_STATUS_BOOKED
    booking_id = first_line.booking.booking_id
    for status, extra in (
        ("CONFIRMED", None),
        ("STARTED", {"status": "CONSULTATION_STATUS_STARTED"}),
        (
            "COMPLETED",
            {
                "status": "CONSULTATION_STATUS_COMPLETED",
                "follow_ups": ["FOLLOW_UP_REFERRAL_TO_SPECIALIST", "FOLLOW_UP_REPORT_AVAILABLE"],
                "referral_specialty": specialty,
            },
        ),
    ):
        if extra is None:
            booking = client.ConfirmBooking(
                api.ConfirmBookingRequest(territory="55", booking_id=booking_id, actor_id=gp)
            ).booking
        else:
            outcome = json_format.ParseDict(
                {"territory": "55", "booking_id": booking_id, "actor_id": gp, **extra},
                api.RecordConsultationOutcomeRequest(),
            )
            booking = client.RecordConsultationOutcome(outcome).booking
        assert ConsultationStatus.Name(booking.status) == f"CONSULTATION_STATUS_{status}"
    changes = bus.wait_for(
        CONSULTATION_STATUS_CHANGED.name, lambda r: r["event"]["booking_id"] == booking_id, count=3
    )
    assert [c["event"]["status"] for c in changes][-1] == "CONSULTATION_STATUS_COMPLETED"
    started = next(c for c in changes if c["event"]["status"] == "CONSULTATION_STATUS_STARTED")
    assert started["event"]["request_to_consultation"].endswith("s")

    # A completed consultation cannot start again.
    with pytest.raises(grpc.RpcError) as again:
        client.RecordConsultationOutcome(
            api.RecordConsultationOutcomeRequest(
                territory="55",
                booking_id=booking_id,
                status=ConsultationStatus.CONSULTATION_STATUS_STARTED,
            )
        )
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # With the referral, the pneumologist's slot is booked.
    referred = ask(client, consultation(patient, specialty, referral_booking_id=booking_id))
    assert referred.status == api.REQUEST_STATUS_BOOKED
    assert referred.booking.practitioner_id == pneumologist
    # A referral that is not one is refused: another patient, another specialty, or the
    # same referral used twice.
    for patient_, specialty_ in (
        (random_pseudonym(), specialty),
        (patient, f"derm-{uuid.uuid4().hex[:8]}"),
        (patient, specialty),
    ):
        with pytest.raises(grpc.RpcError) as bogus:
            ask(client, consultation(patient_, specialty_, referral_booking_id=booking_id))
        assert bogus.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "referral" in bogus.value.details()
    counts = Counter(
        r["event"]["status"]
        for r in bus.all_records(CONSULTATION_STATUS_CHANGED.name, 1)
        if r["event"]["booking_id"] == booking_id
    )
    assert counts == Counter(
        {
            "CONSULTATION_STATUS_CONFIRMED": 1,
            "CONSULTATION_STATUS_STARTED": 1,
            "CONSULTATION_STATUS_COMPLETED": 1,
        }
    )


def register_place(client: Client, place: dict) -> api.RegisterPlaceResponse:
    request = json_format.ParseDict(
        {"registration": {"territory": "55", "place": place}, "experiment_id": "exp-teleconsult"},
        api.RegisterPlaceRequest(),
    )
    return again(client.RegisterPlace, request)


def places(client: Client, **filters) -> list:
    found, token = [], ""
    while True:
        page = client.ListPlaces(
            api.ListPlacesRequest(territory="55", page_size=2, page_token=token, **filters)
        )
        found += list(page.places)
        token = page.next_page_token
        if not token:
            return found


def test_a_request_naming_a_registered_place_alone_is_booked_for_what_the_place_hosts(
    platform, bus
):
    client = access(platform)
    ehpad = f"ehpad-{uuid.uuid4().hex[:12]}"
    # The EHPAD hosts nurse-assisted teleconsultation only.
    hosted = {"kind": "PLACE_KIND_EHPAD", **VERDUN, "modalities": ["MODALITY_NURSE_ASSISTED"]}
    # First registered as hosting video, then changed: the change is what requests get.
    register_place(client, {"place_id": ehpad, **hosted, "modalities": ["MODALITY_VIDEO"]})
    registered = register_place(client, {"place_id": ehpad, **hosted})
    assert registered.event_id
    [event] = bus.wait_for(
        PLACE_REGISTERED.name, lambda r: r["event"]["place"]["place_id"] == ehpad, count=2
    )[-1:]
    assert event["key"] == "55"
    # Registered again: the place is replaced, and listed once, as it stands now.
    listed = [p for p in places(client, commune=VERDUN["commune"]) if p.place_id == ehpad]
    assert [json_format.MessageToDict(p) for p in listed] == [{"placeId": ehpad, **hosted}]

    # A video-only nurse free first, one who also does nurse-assisted care free later.
    specialty = f"wound-care-{uuid.uuid4().hex[:8]}"
    video_only = register(client, "NURSE", specialty, modalities=("VIDEO",))
    assisting = register(client, "NURSE", specialty)
    start = datetime.now(UTC) + timedelta(days=1)
    publish_slots(client, video_only, 2, start)
    publish_slots(client, assisting, 2, start + timedelta(hours=2))

    def asking(**fields) -> ConsultationRequested:
        return consultation(random_pseudonym(), specialty, profession="PROFESSION_NURSE", **fields)

    # Over gRPC: the request names the place alone and gets the directory's place.
    answer = ask(client, asking(place={"place_id": ehpad}))
    assert answer.status == api.REQUEST_STATUS_BOOKED
    assert answer.booking.practitioner_id == assisting
    assert answer.booking.modality == Modality.MODALITY_NURSE_ASSISTED
    assert answer.request.place.commune == VERDUN["commune"]
    assert list(answer.request.place.modalities) == [Modality.MODALITY_NURSE_ASSISTED]
    [asked] = bus.wait_for(
        CONSULTATION_REQUESTED.name,
        lambda r: r["event"]["request_id"] == answer.request.request_id,
    )
    assert asked["event"]["place"]["commune"] == VERDUN["commune"]

    # On Kafka: the same, filled in by the territory's scheduler.
    on_kafka = asking(place={"place_id": ehpad})
    bus.send(
        CONSULTATION_REQUESTED.name,
        b"55",
        on_kafka.SerializeToString(),
        headers_for(CONSULTATION_REQUESTED, on_kafka.patient_pseudonym),
    )
    [booked] = bus.wait_for(
        SLOT_BOOKED.name, lambda r: r["event"]["request_id"] == on_kafka.request_id
    )
    assert booked["event"]["practitioner_id"] == assisting
    assert booked["event"]["modality"] == "MODALITY_NURSE_ASSISTED"
    kept = client.GetRequest(
        api.GetRequestRequest(request_id=on_kafka.request_id, territory="55")
    ).request
    assert kept.request.place.commune == VERDUN["commune"]

    # Inline places work as before: the video-only nurse's earlier slot.
    inline = ask(client, asking(place={"place_id": ehpad, **VERDUN, "kind": "PLACE_KIND_EHPAD"}))
    assert inline.booking.practitioner_id == video_only


def test_a_place_not_in_the_directory_is_refused_and_a_home_is_never_registered(platform, bus):
    client = access(platform)
    unknown = f"cabin-{uuid.uuid4().hex[:12]}"
    patient = random_pseudonym()

    with pytest.raises(grpc.RpcError) as refused:
        ask(client, consultation(patient, place={"place_id": unknown}))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"'{unknown}' is not in the directory" in refused.value.details()
    assert not client.ListPatientRequests(
        api.ListPatientRequestsRequest(patient_pseudonym=patient)
    ).consultation_requests

    on_kafka = consultation(patient, place={"place_id": unknown})
    bus.send(
        CONSULTATION_REQUESTED.name,
        b"55",
        on_kafka.SerializeToString(),
        headers_for(CONSULTATION_REQUESTED, patient),
    )
    [letter] = bus.wait_for(
        "emeuse.access.dead-letter.v1", lambda r: unknown in r["event"]["reason"]
    )
    assert letter["event"]["source_topic"] == CONSULTATION_REQUESTED.name
    assert "RegisterPlace first" in letter["event"]["reason"]

    with pytest.raises(grpc.RpcError) as home:
        register_place(
            client,
            {
                "place_id": "home-1",
                "kind": "PLACE_KIND_HOME",
                **VERDUN,
                "modalities": ["MODALITY_PHONE"],
            },
        )
    assert home.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "a home is never registered" in home.value.details()


def test_register_place_answers_a_newer_client_and_each_of_overlapping_registrations(platform):
    client = access(platform)
    cabin = f"cabin-{uuid.uuid4().hex[:12]}"
    # A client built on a newer Place: a field this service does not know (number 15).
    newer = json_format.ParseDict(
        {
            "place_id": cabin,
            "kind": "PLACE_KIND_PHARMACY_CABIN",
            **VERDUN,
            "modalities": ["MODALITY_VIDEO"],
        },
        api.RegisterPlaceRequest().registration.place,
    )
    request = api.RegisterPlaceRequest(experiment_id="exp-teleconsult")
    request.registration.territory = "55"
    request.registration.place.ParseFromString(newer.SerializeToString() + b"\x78\x01")
    assert len(unknown_fields.UnknownFieldSet(request.registration.place)) == 1

    answer = client.RegisterPlace(request, timeout=30)  # once, no retry

    assert answer.event_id
    [listed] = [p for p in places(client, commune=VERDUN["commune"]) if p.place_id == cabin]
    assert list(listed.modalities) == [Modality.MODALITY_VIDEO]

    # Five registrations of one place_id at once: each caller hears that its own applied.
    def registering(modalities: list[str]) -> api.RegisterPlaceResponse:
        asked = json_format.ParseDict(
            {
                "registration": {
                    "territory": "55",
                    "place": {
                        "place_id": cabin,
                        "kind": "PLACE_KIND_PHARMACY_CABIN",
                        **VERDUN,
                        "modalities": modalities,
                    },
                },
                "experiment_id": "exp-teleconsult",
            },
            api.RegisterPlaceRequest(),
        )
        return client.RegisterPlace(asked, timeout=30)

    choices = [
        ["MODALITY_VIDEO"],
        ["MODALITY_PHONE"],
        ["MODALITY_NURSE_ASSISTED"],
        ["MODALITY_VIDEO", "MODALITY_PHONE"],
        ["MODALITY_PHONE", "MODALITY_NURSE_ASSISTED"],
    ]
    with ThreadPoolExecutor(len(choices)) as pool:
        answers = list(pool.map(registering, choices))

    assert len({a.event_id for a in answers}) == len(choices)
    [kept] = [p for p in places(client, commune=VERDUN["commune"]) if p.place_id == cabin]
    assert [Modality.Name(m) for m in kept.modalities] in choices


def test_a_request_for_a_modality_its_directory_place_does_not_host_is_refused(platform, bus):
    client = access(platform)
    ehpad = f"ehpad-{uuid.uuid4().hex[:12]}"
    register_place(
        client,
        {
            "place_id": ehpad,
            "kind": "PLACE_KIND_EHPAD",
            **VERDUN,
            "modalities": ["MODALITY_NURSE_ASSISTED"],
        },
    )
    patient = random_pseudonym()
    reason = f"'{ehpad}' does not host phone consultations (it hosts nurse-assisted)"

    with pytest.raises(grpc.RpcError) as refused:
        ask(client, consultation(patient, place={"place_id": ehpad}, modality="MODALITY_PHONE"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in refused.value.details()
    assert not client.ListPatientRequests(
        api.ListPatientRequestsRequest(patient_pseudonym=patient)
    ).consultation_requests

    on_kafka = consultation(patient, place={"place_id": ehpad}, modality="MODALITY_PHONE")
    bus.send(
        CONSULTATION_REQUESTED.name,
        b"55",
        on_kafka.SerializeToString(),
        headers_for(CONSULTATION_REQUESTED, patient),
    )
    [letter] = bus.wait_for("emeuse.access.dead-letter.v1", lambda r: ehpad in r["event"]["reason"])
    assert letter["event"]["source_topic"] == CONSULTATION_REQUESTED.name
    assert reason in letter["event"]["reason"]


def test_a_home_located_more_precisely_than_its_commune_is_refused(platform, bus):
    client = access(platform)
    patient = random_pseudonym()
    address = {
        "kind": "PLACE_KIND_HOME",
        "place_id": "home-dupont",
        "commune": "55545",
        "latitude": 49.160123,
        "longitude": 5.381234,
    }

    with pytest.raises(grpc.RpcError) as refused:
        ask(client, consultation(patient, place=address))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "a home has no place_id" in refused.value.details()
    coordinates = {k: v for k, v in address.items() if k != "place_id"}
    with pytest.raises(grpc.RpcError) as refused:
        ask(client, consultation(patient, place=coordinates))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "a home is located by its commune alone" in refused.value.details()
    assert not client.ListPatientRequests(
        api.ListPatientRequestsRequest(patient_pseudonym=patient)
    ).consultation_requests

    on_kafka = consultation(patient, place=coordinates)
    bus.send(
        CONSULTATION_REQUESTED.name,
        b"55",
        on_kafka.SerializeToString(),
        headers_for(CONSULTATION_REQUESTED, patient),
    )
    [letter] = bus.wait_for(
        "emeuse.access.dead-letter.v1",
        lambda r: "a home is located by its commune alone" in r["event"]["reason"],
    )
    assert letter["event"]["source_topic"] == CONSULTATION_REQUESTED.name

    # By its commune alone, a home is asked for, and the bus carries the commune only.
    home = ask(client, consultation(patient, place={"kind": "PLACE_KIND_HOME", "commune": "55545"}))
    [asked] = bus.wait_for(
        CONSULTATION_REQUESTED.name, lambda r: r["event"]["request_id"] == home.request.request_id
    )
    on_bus = asked["event"]["place"]
    assert (on_bus["kind"], on_bus["commune"]) == ("PLACE_KIND_HOME", "55545")
    assert (on_bus["place_id"], on_bus["latitude"], on_bus["longitude"]) == ("", 0.0, 0.0)


def test_list_places_pages_a_commune_by_place_id(platform):
    client = access(platform)
    stenay = {"commune": "55502", "latitude": 49.49, "longitude": 5.19}
    tag = uuid.uuid4().hex[:8]
    cabin = {"kind": "PLACE_KIND_PHARMACY_CABIN", "modalities": ["MODALITY_VIDEO"]}
    for name in ("c", "a", "b"):
        register_place(client, {"place_id": f"{tag}-{name}", **cabin, **stenay})
    register_place(client, {"place_id": f"{tag}-elsewhere", **cabin, **VERDUN})

    def page(token: str = "", **filters) -> api.ListPlacesResponse:
        return client.ListPlaces(
            api.ListPlacesRequest(territory="55", page_size=2, page_token=token, **filters)
        )

    first = page(commune="55502")
    assert [p.place_id for p in first.places] == [f"{tag}-a", f"{tag}-b"]
    assert {p.commune for p in first.places} == {"55502"}
    assert first.next_page_token
    last = page(first.next_page_token, commune="55502")
    assert [p.place_id for p in last.places] == [f"{tag}-c"]
    assert last.next_page_token == ""
    # Without the commune: every place of the territory once, ours among them.
    everywhere = [p.place_id for p in places(client)]
    assert len(everywhere) == len(set(everywhere)) and everywhere == sorted(everywhere)
    assert [i for i in everywhere if i.startswith(tag)] == [
        f"{tag}-a",
        f"{tag}-b",
        f"{tag}-c",
        f"{tag}-elsewhere",
    ]

    for bad in (
        api.ListPlacesRequest(territory="55", page_token="not a token"),
        api.ListPlacesRequest(territory="55", page_size=501),
        api.ListPlacesRequest(territory="55", commune="Stenay"),
        api.ListPlacesRequest(territory="57"),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            client.ListPlaces(bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_every_write_asked_again_after_a_lost_answer_answers_as_the_first_time(platform):
    """Each write sent twice, as a client does when the first answer was lost: the second
    answer is the first one, the agenda unchanged by it."""
    client = access(platform)
    specialty = f"geria-{uuid.uuid4().hex[:8]}"  # nobody else's requests or slots
    place_id = f"cabin-{uuid.uuid4().hex[:8]}"
    practitioner_id = f"pract-{uuid.uuid4().hex[:12]}"
    patient = random_pseudonym()
    start = datetime.now(UTC) + timedelta(minutes=5)
    slot_starts = [start, start + timedelta(minutes=20), start + timedelta(minutes=40)]

    def twice(call, request):
        first = call(request, timeout=30)
        assert call(request, timeout=30) == first, call
        return first

    twice(
        client.RegisterPlace,
        json_format.ParseDict(
            {
                "registration": {
                    "territory": "55",
                    "place": {
                        "place_id": place_id,
                        "kind": "PLACE_KIND_PHARMACY_CABIN",
                        **VERDUN,
                        "modalities": ["MODALITY_VIDEO"],
                    },
                },
                "experiment_id": "exp-teleconsult",
            },
            api.RegisterPlaceRequest(),
        ),
    )
    practitioner = api.RegisterPractitionerRequest(experiment_id="exp-teleconsult")
    json_format.ParseDict(
        {
            "practitioner_id": practitioner_id,
            "territory": "55",
            "profession": "PROFESSION_SPECIALIST",
            "specialty": specialty,
            "care_line": "CARE_LINE_FIRST",
            "modalities": ["MODALITY_VIDEO", "MODALITY_NURSE_ASSISTED"],
            "place": {"kind": "PLACE_KIND_HEALTH_CENTRE", **BAR_LE_DUC},
            "active": True,
        },
        practitioner.practitioner,
    )
    twice(client.RegisterPractitioner, practitioner)
    availability = api.PublishAvailabilityRequest(experiment_id="exp-teleconsult")
    availability.availability.practitioner_id = practitioner_id
    availability.availability.territory = "55"
    for at in slot_starts:
        slot = availability.availability.slots.add()
        slot.start.FromDatetime(at)
        slot.duration.FromSeconds(15 * 60)
    slot_ids = list(twice(client.PublishAvailability, availability).slot_ids)

    asked = [
        twice(
            client.RequestConsultation,
            api.RequestConsultationRequest(
                request=consultation(patient, specialty), experiment_id="exp-teleconsult"
            ),
        ).request
        for _ in range(2)
    ]
    seen, moved = asked[0].booking.booking_id, asked[1].booking.booking_id
    assert [a.booking.slot_id for a in asked] == slot_ids[:2]
    twice(client.ConfirmBooking, api.ConfirmBookingRequest(territory="55", booking_id=seen))
    for status in ("STARTED", "COMPLETED"):
        twice(
            client.RecordConsultationOutcome,
            api.RecordConsultationOutcomeRequest(
                territory="55",
                booking_id=seen,
                status=getattr(ConsultationStatus, f"CONSULTATION_STATUS_{status}"),
            ),
        )
    rescheduled = twice(
        client.RescheduleBooking,
        api.RescheduleBookingRequest(territory="55", booking_id=moved, slot_id=slot_ids[2]),
    ).booking
    twice(
        client.CancelBooking,
        api.CancelBookingRequest(
            territory="55", booking_id=rescheduled.booking_id, reason_code="patient.away"
        ),
    )
    agenda = client.GetPractitionerAgenda(
        api.GetPractitionerAgendaRequest(territory="55", practitioner_id=practitioner_id)
    )
    assert len(agenda.slots) == 3  # each slot published once
    requests = client.ListPatientRequests(api.ListPatientRequestsRequest(patient_pseudonym=patient))
    assert len(requests.consultation_requests) == 2  # each request made once
