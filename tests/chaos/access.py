"""The access service under faults: consultation requests matched to a known set of slots.

Each territory (52, 54, 55: the agenda's key, so its single writer) gets GPs registered
(PractitionerRegistered), then their slots (AvailabilityPublished, once the GPs are in
force): 3 minutes each, all starting 60 to 108 minutes from now, so every slot suits every
request of the round (a GP, first line, nurse-assisted, within any urgency's horizon, not
started yet), and there are fewer slots than requests. The stream is consultation
requests for GPs in the three territories, a quarter of them immediate, some sent twice
under the same request_id (the second is a duplicate). A territory's requests are handled
one at a time in the order of its partition, each matched alone against the free slots,
earliest (then lowest slot id) first. So the outputs are unambiguous:
- the territory's first N distinct requests (N its slots) are booked, the k-th in the k-th
  slot by (start, slot id): one SlotBooked each, id derived_id(request, slot, "0");
- every later one waits; an immediate one waits past its booking delay (3 s in the
  harness's settings): one RequestFlagged, id derived_id(request, "flagged");
- no ConsultationStatusChanged (nobody confirms, cancels or consults).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format

from emeuse.access.v1.access_events_pb2 import (
    AvailabilityPublished,
    ConsultationRequested,
    Modality,
    PlaceKind,
    PractitionerRegistered,
    Profession,
    RequesterRole,
    Urgency,
)
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import (
    ALERT_RAISED,
    AVAILABILITY_PUBLISHED,
    BOOKING_ACTION_REQUESTED,
    CONSULTATION_REQUESTED,
    CONSULTATION_STATUS_CHANGED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    PLACE_REGISTERED,
    PRACTITIONER_REGISTERED,
    REQUEST_FLAGGED,
    SLOT_BOOKED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from services.access.scheduling import derived_id
from tests.chaos.kafka_io import Output
from tests.chaos.scenario import Record, Row, Scenario, Workload, tally
from tests.integration.events import headers_for

TERRITORIES = {
    "52": Territory.TERRITORY_HAUTE_MARNE,
    "54": Territory.TERRITORY_MEURTHE_ET_MOSELLE,
    "55": Territory.TERRITORY_MEUSE,
}
COMMUNE = {"52": "52121", "54": "54395", "55": "55029"}
SLOT = timedelta(minutes=3)
# No slot starts before the round is over (a long one included), and the last (16 slots of
# 3 min from 60 min on) starts within an immediate request's 2 h from the start of the round.
FIRST_SLOT_IN = timedelta(minutes=60)
SLOTS_EACH = 16
# At most this many GPs per territory: every request is matched against the free slots.
GPS_AT_MOST = 10
# About one request in SLOTS_SHARE gets a slot; one in IMMEDIATE_SHARE is immediate; one in
# RESENT_SHARE is sent twice.
SLOTS_SHARE = 3
IMMEDIATE_SHARE = 4
RESENT_SHARE = 20
FLAG_DELAY_S = 3  # the harness's EMEUSE_ACCESS_BOOKING_DELAYS for immediate


def _record(spec: Any, message: Any, territory: str, subject: str = "") -> Record:
    headers = headers_for(spec, subject, TERRITORIES[territory])
    return (spec.name, territory.encode(), message.SerializeToString(), headers)


def _gp(territory: str, n: int) -> PractitionerRegistered:
    return json_format.ParseDict(
        {
            "practitioner_id": f"gp-chaos-{territory}-{n:03d}",
            "territory": territory,
            "profession": "PROFESSION_GP",
            "care_line": "CARE_LINE_FIRST",
            "modalities": ["MODALITY_VIDEO", "MODALITY_NURSE_ASSISTED"],
            "place": {"kind": "PLACE_KIND_HEALTH_CENTRE", "commune": COMMUNE[territory]},
            "active": True,
        },
        PractitionerRegistered(),
    )


def _slots(gp: PractitionerRegistered, count: int, first: datetime) -> AvailabilityPublished:
    published = AvailabilityPublished(practitioner_id=gp.practitioner_id, territory=gp.territory)
    for k in range(count):
        slot = published.slots.add(slot_id=f"slot-{gp.practitioner_id}-{k:03d}")
        slot.start.FromDatetime(first + SLOT * k)
        slot.duration.FromTimedelta(SLOT)
    return published


def _request(territory: str, urgency: Urgency.ValueType) -> ConsultationRequested:
    request = ConsultationRequested(
        request_id=f"req-chaos-{uuid.uuid4().hex[:16]}",
        territory=territory,
        patient_pseudonym=random_pseudonym(),
        urgency=urgency,
        profession=Profession.PROFESSION_GP,
        reason_code="follow-up.chronic",
        requested_by=RequesterRole.REQUESTER_ROLE_NURSE,
        requester_id="ide-ehpad-0107",
    )
    request.place.kind = PlaceKind.PLACE_KIND_EHPAD
    request.place.commune = COMMUNE[territory]
    request.place.modalities.append(Modality.MODALITY_NURSE_ASSISTED)
    request.requested_at.GetCurrentTime()
    return request


def build(rng: random.Random, _subjects: int, requests: int) -> Workload:
    """GPs and their slots in each territory (about a third as many slots as requests, at
    most GPS_AT_MOST GPs each), then `requests` consultation requests, each for a patient
    of its own (the round's --patients does not apply: the agenda's key is the territory)."""
    slots_each_territory = max(
        1, min(requests // SLOTS_SHARE // len(TERRITORIES), GPS_AT_MOST * SLOTS_EACH)
    )
    first = datetime.now(UTC).replace(microsecond=0) + FIRST_SLOT_IN
    setup: list[Record] = []
    then: list[Record] = []
    slot_order: dict[str, list[str]] = {}  # territory -> its slots, as matching takes them
    for territory in TERRITORIES:
        gps = -(-slots_each_territory // SLOTS_EACH)
        starts: list[tuple[datetime, str]] = []
        for n in range(gps):
            gp = _gp(territory, n)
            count = min(SLOTS_EACH, slots_each_territory - n * SLOTS_EACH)
            published = _slots(gp, count, first)
            setup.append(_record(PRACTITIONER_REGISTERED, gp, territory))
            then.append(_record(AVAILABILITY_PUBLISHED, published, territory))
            starts += [(s.start.ToDatetime(tzinfo=UTC), s.slot_id) for s in published.slots]
        slot_order[territory] = [slot_id for _, slot_id in sorted(starts)]

    stream: list[Record] = []
    seen: dict[str, list[ConsultationRequested]] = {t: [] for t in TERRITORIES}
    resent = 0
    for _ in range(requests):
        territory = rng.choice(list(TERRITORIES))
        if seen[territory] and rng.randrange(RESENT_SHARE) == 0:
            request = rng.choice(seen[territory][-50:])  # the same request, sent again
            resent += 1
        else:
            urgency = (
                Urgency.URGENCY_IMMEDIATE
                if rng.randrange(IMMEDIATE_SHARE) == 0
                else Urgency.URGENCY_SAME_DAY
            )
            request = _request(territory, urgency)
            seen[territory].append(request)
        stream.append(
            _record(CONSULTATION_REQUESTED, request, territory, request.patient_pseudonym)
        )

    booked: dict[str, str] = {}  # request -> its slot
    flagged: set[str] = set()
    for territory, requests_of in seen.items():
        for k, request in enumerate(requests_of):
            if k < len(slot_order[territory]):
                booked[request.request_id] = slot_order[territory][k]
            elif request.urgency == Urgency.URGENCY_IMMEDIATE:
                flagged.add(request.request_id)
    return Workload(
        keys=list(TERRITORIES),
        setup=setup,
        then=then,
        stream=stream,
        expected=(booked, flagged),
        outputs_expected=len(booked) + len(flagged),
        notes=[
            f"{sum(len(r) for r in seen.values())} requests ({resent} sent twice), "
            f"{len(booked)} slots, {len(flagged)} immediate requests left waiting"
        ],
    )


def check(workload: Workload, outputs: dict[str, list[Output]]) -> list[Row]:
    booked: dict[str, str]
    booked, flagged = workload.expected
    ours = set(workload.keys)

    def mine(topic: str) -> list[Output]:
        return [o for o in outputs[topic] if (o.key or b"").decode() in ours]

    def request(o: Output) -> Hashable:
        return o.message.request_id

    bookings = tally(
        "slots booked (first requests of a territory)",
        {r: derived_id(r, slot, "0") for r, slot in booked.items()},
        mine(SLOT_BOOKED.name),
        request,
        lambda o: o.message.slot_id == booked[o.message.request_id],
    )
    flags = tally(
        "requests flagged (immediate, left waiting)",
        {r: derived_id(r, "flagged") for r in flagged},
        mine(REQUEST_FLAGGED.name),
        request,
    )
    changes = Row("consultation status changes (none expected)", 0)
    changes.seen = changes.unexpected = len(mine(CONSULTATION_STATUS_CHANGED.name))
    return [bookings, flags, changes]


ACCESS = Scenario(
    service="access",
    inputs=(
        ALERT_RAISED,
        INCIDENT_RAISED,
        INCIDENT_RESOLVED,
        PRACTITIONER_REGISTERED,
        PLACE_REGISTERED,
        AVAILABILITY_PUBLISHED,
        CONSULTATION_REQUESTED,
        BOOKING_ACTION_REQUESTED,
    ),
    stream_topic=CONSULTATION_REQUESTED,
    outputs=(SLOT_BOOKED, REQUEST_FLAGGED, CONSULTATION_STATUS_CHANGED),
    build=build,
    check=check,
    timers_s=FLAG_DELAY_S,
)
