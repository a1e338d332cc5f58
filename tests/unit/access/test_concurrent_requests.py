"""200 requests for 50 slots, in any order: 50 bookings, 150 in line, nothing twice."""

import random
from datetime import timedelta

import pytest

from services.access.domain.agenda import BOOKED, WAITING, queue_key
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    COMMERCY,
    IMMEDIATE,
    NOW,
    ROUTINE,
    SAINT_MIHIEL,
    SAME_DAY,
    STENAY,
    VERDUN,
    WITHIN_7_DAYS,
    Meuse,
    availability,
    booked,
    consultation,
    place,
    practitioner,
)

TOWNS = (BAR_LE_DUC, VERDUN, COMMERCY, SAINT_MIHIEL, STENAY)
GPS = [(f"gp-{town.commune}-{n}", town) for town in TOWNS for n in (1, 2)]
URGENCIES = (IMMEDIATE, SAME_DAY, WITHIN_7_DAYS, ROUTINE)


def requests(rng):
    return [
        consultation(
            f"req-{n:03d}",
            urgency=URGENCIES[n % 4],
            requested_at=NOW - timedelta(minutes=200 - n),
            where=place(rng.choice(TOWNS)),
        )
        for n in range(200)
    ]


def availabilities():
    """5 slots of 20 minutes for each of the 10 GPs, all within the next two hours (in
    reach of an immediate request), published 3 then 2 at a time."""
    published = []
    for pid, _ in GPS:
        starts = [NOW + timedelta(minutes=10 + 20 * k) for k in range(5)]
        published += [availability(pid, *starts[:3]), availability(pid, *starts[3:])]
    return published


def fold(events):
    meuse = Meuse()
    for pid, town in GPS:
        meuse.register(practitioner(pid, town))
    facts = []
    for kind, message in events:
        result = meuse.ask(message) if kind == "ask" else meuse.publish(message)
        facts += booked(result)
    return meuse, facts


def assert_fifty_booked_once(meuse, slots_booked):
    assert len(slots_booked) == 50
    assert len({b.slot_id for b in slots_booked}) == 50
    assert len({b.request_id for b in slots_booked}) == 50
    assert len({b.booking_id for b in slots_booked}) == 50
    assert len(meuse.agenda.waiting()) == 150
    statuses = [r.status for r in meuse.agenda.requests()]
    assert (statuses.count(BOOKED), statuses.count(WAITING)) == (50, 150)
    # The state agrees with the facts: every slot held by one booking of one booked request.
    slots = meuse.agenda.slots()
    assert len(slots) == 50 and all(not s.free for s in slots)
    by_slot = {b.slot_id: b for b in slots_booked}
    for slot in slots:
        booking = meuse.agenda.booking(slot.booking_id)
        assert booking.slot_id == slot.slot_id
        assert booking.request_id == by_slot[slot.slot_id].request_id
        assert meuse.agenda.request(booking.request_id).booking_id == booking.booking_id
    assert len(meuse.agenda.bookings()) == 50


@pytest.mark.parametrize("seed", range(5))
def test_200_requests_for_50_slots_in_any_order_give_exactly_50_bookings(seed):
    rng = random.Random(seed)
    events = [("ask", r) for r in requests(rng)] + [("publish", a) for a in availabilities()]
    rng.shuffle(events)
    meuse, slots_booked = fold(events)
    assert_fifty_booked_once(meuse, slots_booked)


@pytest.mark.parametrize("seed", range(3))
def test_each_request_delivered_twice_is_still_booked_once(seed):
    rng = random.Random(seed)
    asked = [("ask", r) for r in requests(rng)]
    events = asked + asked + [("publish", a) for a in availabilities()]
    rng.shuffle(events)
    meuse, slots_booked = fold(events)
    assert_fifty_booked_once(meuse, slots_booked)


def test_slots_published_after_every_request_go_to_the_first_50_in_line():
    rng = random.Random(7)
    asked = requests(rng)
    rng.shuffle(asked)
    events = [("ask", r) for r in asked] + [("publish", a) for a in availabilities()]
    meuse, slots_booked = fold(events)
    assert_fifty_booked_once(meuse, slots_booked)
    in_line = sorted(meuse.agenda.requests(), key=queue_key)
    assert {b.request_id for b in slots_booked} == {r.request_id for r in in_line[:50]}
    assert all(meuse.agenda.request(b.request_id).urgency == IMMEDIATE for b in slots_booked)
