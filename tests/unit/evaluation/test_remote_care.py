"""First bookings told by teleconsultation, télésoin or in person, and the distance that
remote ones spared, whichever topic a rebuild reads first."""

from __future__ import annotations

from itertools import permutations

from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    Modality,
    Profession,
    SlotBooked,
)
from emeuse.registry import CONSULTATION_REQUESTED, SLOT_BOOKED
from services.evaluation.contributions import RELATIONS
from services.evaluation.domain import cells
from tests.unit.evaluation.partitions import Partitions
from tests.unit.evaluation.scenario import MARCH, Sent, completed, person

VIDEO, PHONE = Modality.MODALITY_VIDEO, Modality.MODALITY_PHONE
NURSE_ASSISTED = Modality.MODALITY_NURSE_ASSISTED
GP, NURSE = Profession.PROFESSION_GP, Profession.PROFESSION_NURSE
PHARMACIST, MIDWIFE = Profession.PROFESSION_PHARMACIST, Profession.PROFESSION_MIDWIFE


def access_event(spec, message) -> Sent:
    return completed(Sent(spec, message, "54", "telesuivi", "54", MARCH))


def request(n: int, profession: int) -> Sent:
    asked = ConsultationRequested(
        request_id=f"q-{n}", territory="54", patient_pseudonym=person("c", n), profession=profession
    )
    return access_event(CONSULTATION_REQUESTED, asked)


def booking(
    n: int, modality: int, km: float = 0.0, rescheduled_from: str = "", b: str = ""
) -> Sent:
    booked = SlotBooked(
        booking_id=b or f"b-{n}",
        territory="54",
        request_id=f"q-{n}",
        patient_pseudonym=person("c", n),
        modality=modality,  # type: ignore[arg-type]
        distance_km=km,
        rescheduled_from=rescheduled_from,
    )
    return access_event(SLOT_BOOKED, booked)


def march(state: Partitions) -> dict[tuple[str, str], float]:
    merged = cells.merge(cell for key, cell in state.cells() if key.endswith("|2026-03"))
    return {
        (f.name, f.breakdown): f.value
        for f in cells.figures("2026-03", merged, frozenset())
        if f.name.startswith(("access.bookings", "access.distance_avoided"))
    }


def published(state: Partitions) -> dict[tuple[str, str], float | None]:
    """As an answer shows them: None when withheld."""
    merged = cells.merge(cell for key, cell in state.cells() if key.endswith("|2026-03"))
    shown = cells.suppressed(cells.figures("2026-03", merged, frozenset()), RELATIONS)
    return {(f.name, f.breakdown): None if f.suppressed else f.value for f in shown}


# A month of one territory: télésoin by a nurse and a pharmacist, teleconsultation by a GP
# (also with a nurse beside the patient) and a midwife, one in person (no remote modality),
# a request cancelled and rebooked (a second first booking) and a reschedule.
EVENTS = [
    request(1, GP),
    booking(1, VIDEO, km=12.3),
    request(2, NURSE),
    booking(2, PHONE, km=4.0),
    request(3, PHARMACIST),
    booking(3, VIDEO, km=0.0),  # a patient at home: no distance known
    request(4, GP),
    booking(4, NURSE_ASSISTED, km=20.0),
    request(5, MIDWIFE),
    booking(5, VIDEO),
    request(8, GP),
    booking(8, Modality.MODALITY_UNSPECIFIED, km=8.0),  # in person: no trip spared
    request(6, NURSE),
    booking(6, VIDEO, km=3.1),
    booking(6, VIDEO, km=3.1, b="b-6-again"),  # cancelled and rebooked
    booking(6, VIDEO, km=50.0, rescheduled_from="b-6-again", b="b-6-moved"),
]
EXPECTED = {
    ("access.bookings", ""): 8,
    ("access.bookings", "modality=video"): 5,
    ("access.bookings", "modality=phone"): 1,
    ("access.bookings", "modality=nurse_assisted"): 1,
    ("access.bookings", "modality=unspecified"): 1,
    ("access.bookings", "care=teleconsultation"): 3,
    ("access.bookings", "care=telesoin"): 4,
    ("access.bookings", "care=in_person"): 1,
    # Remote first bookings with a distance: 12.3 + 4.0 + 20.0 + 3.1 + 3.1 km, one way.
    ("access.distance_avoided.observations", ""): 5,
    ("access.distance_avoided.km", ""): 42.5,
}


def test_a_first_booking_is_teleconsultation_or_telesoin_by_what_its_request_asked():
    state = Partitions()
    for sent in EVENTS:
        state.handle(sent)
    assert march(state) == EXPECTED


def test_bookings_read_before_their_requests_count_the_same_as_after_them():
    """Reading every topic from the start (a rebuild), the bookings' topic may come first:
    the kernel orders records within a topic only. The figures must not depend on it."""
    requests = [s for s in EVENTS if s.spec is CONSULTATION_REQUESTED]
    bookings = [s for s in EVENTS if s.spec is SLOT_BOOKED]
    live = Partitions()
    for sent in EVENTS:
        live.handle(sent)
    rebuilt = Partitions()
    for sent in bookings:
        rebuilt.handle(sent)
    # Counted at once (total, modality, distance); the care waits for the requests, but
    # in person needs none.
    before = march(rebuilt)
    assert before[("access.bookings", "")] == 8
    assert before[("access.bookings", "care=in_person")] == 1
    assert ("access.bookings", "care=telesoin") not in before
    for sent in requests:
        rebuilt.handle(sent)
    assert march(rebuilt) == march(live) == EXPECTED


def test_any_order_of_a_request_and_its_two_first_bookings_gives_the_same_care():
    events = [request(7, PHARMACIST), booking(7, PHONE, km=6.0), booking(7, PHONE, b="b-7-2")]
    results = []
    for order in permutations(events):
        state = Partitions()
        for sent in order:
            state.handle(sent)
        results.append(march(state))
    assert all(r == results[0] for r in results)
    assert results[0][("access.bookings", "care=telesoin")] == 2
    assert results[0][("access.distance_avoided.km", "")] == 6.0


def test_the_distance_avoided_is_withheld_under_ten_bookings_and_shown_from_ten():
    few = Partitions()
    for n in range(9):
        few.handle(request(10 + n, GP))
        few.handle(booking(10 + n, VIDEO, km=10.0))
    shown = published(few)
    assert shown[("access.distance_avoided.observations", "")] is None
    assert shown[("access.distance_avoided.km", "")] is None
    enough = few
    enough.handle(request(19, GP))
    enough.handle(booking(19, VIDEO, km=15.5))
    shown = published(enough)
    assert shown[("access.distance_avoided.observations", "")] == 10
    assert shown[("access.distance_avoided.km", "")] == 105.5  # a mean of 10.55 km
    assert shown[("access.bookings", "care=teleconsultation")] == 10
