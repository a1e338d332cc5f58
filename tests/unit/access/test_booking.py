"""Booking actions: book, confirm, reschedule, cancel, outcome; refusals and duplicates."""

from datetime import timedelta

import pytest

from emeuse.access.v1.access_events_pb2 import ConsultationStatus, FollowUp, Place, PlaceKind
from emeuse.runtime.codec import InvalidEventError
from services.access.domain.agenda import (
    BOOKED,
    DONE,
    REQUEST_CANCELLED,
    WAITING,
    RequestState,
)
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    BOOK_SLOT,
    CANCEL,
    COMMERCY,
    CONFIRM,
    IMMEDIATE,
    NOW,
    PHONE,
    RECORD_OUTCOME,
    RESCHEDULE,
    SAME_DAY,
    VERDUN,
    VIDEO,
    Meuse,
    action,
    at,
    availability,
    booked,
    changed,
    consultation,
    given,
    place,
    practitioner,
)

SCHEDULED = ConsultationStatus.CONSULTATION_STATUS_SCHEDULED
CONFIRMED = ConsultationStatus.CONSULTATION_STATUS_CONFIRMED
STARTED = ConsultationStatus.CONSULTATION_STATUS_STARTED
COMPLETED = ConsultationStatus.CONSULTATION_STATUS_COMPLETED
NO_SHOW = ConsultationStatus.CONSULTATION_STATUS_NO_SHOW
CANCELLED = ConsultationStatus.CONSULTATION_STATUS_CANCELLED
PRESCRIPTION = FollowUp.FOLLOW_UP_PRESCRIPTION_ISSUED
REFERRAL = FollowUp.FOLLOW_UP_REFERRAL_TO_SPECIALIST
REPORT = FollowUp.FOLLOW_UP_REPORT_AVAILABLE
CABIN_COMMERCY = place(COMMERCY, PlaceKind.PLACE_KIND_PHARMACY_CABIN, (VIDEO,), "cabin-55122")
S9, S10, S11 = "gp-bld-1130-0900", "gp-bld-1130-1000", "gp-bld-1130-1100"


def gp_day(*hours):
    """A Bar-le-Duc GP with slots at the given hours."""
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", *(at(h) for h in hours)))
    return meuse


def request_status(meuse, request_id):
    return meuse.agenda.request(request_id).status


def booking_status(meuse, booking_id):
    return meuse.agenda.booking(booking_id).status


def refused(meuse, action_id):
    outcome = meuse.outcome(action_id)
    assert outcome is not None and outcome["ok"] is False, outcome
    return outcome["code"]


def slot_holders(meuse):
    """Slot id -> request id of the active booking in it, from the state."""
    holders = {}
    for slot in meuse.agenda.slots():
        if slot.booking_id:
            booking = meuse.agenda.booking(slot.booking_id)
            assert booking.slot_id == slot.slot_id and booking.active
            holders[slot.slot_id] = booking.request_id
    return holders


# --- book -----------------------------------------------------------------------------


def test_a_request_is_booked_on_arrival_into_the_earliest_free_slot():
    meuse = gp_day(10, 9)
    result = meuse.ask(consultation("r-1", requested_at=at(7, 30)), now=at(8))
    (slot,) = booked(result)
    assert result.outcome == "received"
    assert slot.slot_id == S9
    assert slot.territory == "55"
    assert slot.patient_pseudonym == consultation("r-1").patient_pseudonym
    assert slot.modality == VIDEO
    assert slot.waited.ToTimedelta() == timedelta(minutes=30)
    assert slot.rescheduled_from == ""
    booking = meuse.agenda.booking(slot.booking_id)
    assert (booking.request_id, booking.slot_id, booking.status) == ("r-1", S9, SCHEDULED)
    assert meuse.agenda.slot(S9).booking_id == slot.booking_id
    assert request_status(meuse, "r-1") == BOOKED


def test_a_request_seen_twice_is_handled_once():
    meuse = gp_day(9, 10)
    meuse.ask(consultation("r-1"))
    again = meuse.ask(consultation("r-1"))
    assert (again.outcome, again.facts) == ("duplicate", [])
    assert slot_holders(meuse) == {S9: "r-1"}


def test_an_invalid_request_is_refused_and_not_kept():
    meuse = gp_day(9)
    for bad in (
        consultation("free-text", reason="Mme Dupont a mal au dos"),
        consultation("no-urgency", urgency=0),
        consultation("bad-commune", where=Place(kind=PlaceKind.PLACE_KIND_HOME, commune="Verdun")),
    ):
        with pytest.raises(InvalidEventError):
            meuse.ask(bad)
        assert meuse.agenda.request(bad.request_id) is None
    assert meuse.agenda.slot(S9).free


def test_book_slot_books_a_given_free_slot_for_a_waiting_request():
    meuse = gp_day(9, 10)
    # A request in line while slots are free (not served yet, e.g. restored from the changelog).
    asked = consultation("r-1")
    meuse.agenda.save_request(
        RequestState(
            request_id="r-1",
            patient=asked.patient_pseudonym,
            urgency=asked.urgency,
            profession=asked.profession,
            requested_at=NOW,
            received_at=NOW,
        )
    )
    result = meuse.act(action(BOOK_SLOT, "book-1", request_id="r-1", slot_id=S10))
    (slot,) = booked(result)
    assert (result.outcome, slot.slot_id) == ("booked", S10)
    assert meuse.outcome("book-1") == {"ok": True, "booking_id": slot.booking_id}
    assert slot_holders(meuse) == {S10: "r-1"}


def test_two_requests_racing_for_one_slot_one_is_booked_the_other_refused():
    meuse = gp_day(9)
    meuse.ask(consultation("first"))
    meuse.ask(consultation("second"))
    result = meuse.act(action(BOOK_SLOT, "book-second", request_id="second", slot_id=S9))
    assert (result.outcome, result.facts) == ("refused", [])
    outcome = meuse.outcome("book-second")
    assert outcome["code"] == "FAILED_PRECONDITION"
    assert "already booked" in outcome["message"]
    assert slot_holders(meuse) == {S9: "first"}
    assert request_status(meuse, "second") == WAITING


def test_book_slot_refuses_a_request_already_booked():
    meuse = gp_day(9, 10)
    meuse.ask(consultation("r-1"))
    meuse.act(action(BOOK_SLOT, "book-again", request_id="r-1", slot_id=S10))
    assert refused(meuse, "book-again") == "FAILED_PRECONDITION"
    assert slot_holders(meuse) == {S9: "r-1"}


@pytest.mark.parametrize(
    ("request_id", "slot_id"), [("no-such-request", S9), ("waiting", "no-such-slot")]
)
def test_book_slot_refuses_an_unknown_request_or_slot_as_not_found(request_id, slot_id):
    meuse = gp_day(9)
    meuse.ask(consultation("first"))
    meuse.ask(consultation("waiting"))
    meuse.act(action(BOOK_SLOT, "book", request_id=request_id, slot_id=slot_id))
    assert refused(meuse, "book") == "NOT_FOUND"


def test_book_slot_refuses_a_slot_that_does_not_suit_the_request():
    meuse = gp_day(9)
    meuse.register(practitioner("gp-phone", VERDUN, modalities=(PHONE,)))
    meuse.publish(availability("gp-phone", at(8, 30)))
    meuse.ask(consultation("first"))
    meuse.ask(consultation("cabin", where=CABIN_COMMERCY))
    meuse.act(action(BOOK_SLOT, "book", request_id="cabin", slot_id="gp-phone-1130-0830"))
    assert refused(meuse, "book") == "FAILED_PRECONDITION"


# --- confirm --------------------------------------------------------------------------


def test_confirm_publishes_the_new_status_once():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    booking_id = meuse.booking_of("r-1")
    result = meuse.act(action(CONFIRM, "confirm-1", booking_id=booking_id), now=at(8, 5))
    (status,) = changed(result)
    assert (status.booking_id, status.request_id, status.status) == (booking_id, "r-1", CONFIRMED)
    assert (status.changed_by, status.practitioner_id) == ("ide-ehpad-55029", "gp-bld")
    assert booking_status(meuse, booking_id) == CONFIRMED
    again = meuse.act(action(CONFIRM, "confirm-2", booking_id=booking_id))
    assert (again.outcome, again.facts) == ("already_confirmed", [])


def test_confirm_refuses_an_unknown_or_cancelled_booking():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    booking_id = meuse.booking_of("r-1")
    meuse.act(action(CONFIRM, "confirm-unknown", booking_id="no-such-booking"))
    assert refused(meuse, "confirm-unknown") == "NOT_FOUND"
    meuse.act(action(CANCEL, "cancel", booking_id=booking_id))
    meuse.act(action(CONFIRM, "confirm-cancelled", booking_id=booking_id))
    assert refused(meuse, "confirm-cancelled") == "FAILED_PRECONDITION"


def test_confirm_refuses_a_started_consultation():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    booking_id = meuse.booking_of("r-1")
    meuse.act(action(RECORD_OUTCOME, "start", booking_id=booking_id, status=STARTED), now=at(9))
    meuse.act(action(CONFIRM, "confirm", booking_id=booking_id), now=at(9, 1))
    assert refused(meuse, "confirm") == "FAILED_PRECONDITION"
    assert booking_status(meuse, booking_id) == STARTED


# --- reschedule -----------------------------------------------------------------------


def test_reschedule_moves_the_booking_and_gives_the_old_slot_to_the_next_in_line():
    meuse = gp_day(9)
    meuse.ask(consultation("home", where=place(BAR_LE_DUC)))
    # Waits: the cabin offers video only, and the 14:00 slot is by phone.
    meuse.ask(consultation("cabin", where=CABIN_COMMERCY, requested_at=at(7)))
    meuse.publish(availability("gp-bld", at(14), modalities=(PHONE,)))
    assert request_status(meuse, "cabin") == WAITING
    old = meuse.booking_of("home")
    result = meuse.act(
        action(RESCHEDULE, "move", booking_id=old, slot_id="gp-bld-1130-1400"), now=at(8, 10)
    )
    assert result.outcome == "rescheduled"
    (cancelled,) = changed(result)
    assert (cancelled.booking_id, cancelled.status) == (old, CANCELLED)
    assert cancelled.reason_code == "booking.rescheduled"
    moved, freed = booked(result)
    assert (moved.request_id, moved.slot_id, moved.modality) == ("home", "gp-bld-1130-1400", PHONE)
    assert moved.rescheduled_from == old
    assert moved.booking_id != old
    assert (freed.request_id, freed.slot_id, freed.rescheduled_from) == ("cabin", S9, "")
    assert meuse.outcome("move") == {"ok": True, "booking_id": moved.booking_id}
    assert booking_status(meuse, old) == CANCELLED
    assert slot_holders(meuse) == {S9: "cabin", "gp-bld-1130-1400": "home"}
    assert meuse.booking_of("home") == moved.booking_id


def test_reschedule_refuses_a_taken_unknown_or_started_booking_or_slot():
    meuse = gp_day(9, 10, 11)
    meuse.ask(consultation("r-1"))
    meuse.ask(consultation("r-2"))
    b1, b2 = meuse.booking_of("r-1"), meuse.booking_of("r-2")
    meuse.act(action(RESCHEDULE, "to-taken", booking_id=b1, slot_id=S10))
    assert refused(meuse, "to-taken") == "FAILED_PRECONDITION"
    meuse.act(action(RESCHEDULE, "to-unknown", booking_id=b1, slot_id="no-such-slot"))
    assert refused(meuse, "to-unknown") == "NOT_FOUND"
    meuse.act(action(RESCHEDULE, "unknown", booking_id="no-such-booking", slot_id=S11))
    assert refused(meuse, "unknown") == "NOT_FOUND"
    meuse.act(action(RECORD_OUTCOME, "start-2", booking_id=b2, status=STARTED), now=at(10))
    meuse.act(action(RESCHEDULE, "started", booking_id=b2, slot_id=S11), now=at(10, 5))
    assert refused(meuse, "started") == "FAILED_PRECONDITION"
    assert slot_holders(meuse) == {S9: "r-1", S10: "r-2"}


def test_rescheduling_back_to_a_slot_held_before_makes_a_new_booking():
    meuse = gp_day(9, 10)
    meuse.ask(consultation("r-1"))
    first = meuse.booking_of("r-1")
    meuse.act(action(RESCHEDULE, "to-10", booking_id=first, slot_id=S10))
    second = meuse.booking_of("r-1")
    result = meuse.act(action(RESCHEDULE, "back-to-9", booking_id=second, slot_id=S9))
    (third,) = booked(result)
    assert third.booking_id != first
    assert booking_status(meuse, first) == CANCELLED
    event_ids = [f.event_id for f in meuse.facts]
    assert len(event_ids) == len(set(event_ids))


# --- cancel ---------------------------------------------------------------------------


def test_cancel_without_rebook_cancels_the_request_and_frees_the_slot_for_the_next_in_line():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    meuse.ask(consultation("routine-2", requested_at=at(7)))
    meuse.ask(consultation("same-day-3", urgency=SAME_DAY, requested_at=at(7, 30)))
    booking_id = meuse.booking_of("r-1")
    result = meuse.act(
        action(CANCEL, "cancel", booking_id=booking_id, reason_code="patient.hospitalised"),
        now=at(8, 15),
    )
    assert result.outcome == "cancelled"
    (status,) = changed(result)
    assert (status.status, status.reason_code) == (CANCELLED, "patient.hospitalised")
    assert given(result) == {"same-day-3": S9}
    assert request_status(meuse, "r-1") == REQUEST_CANCELLED
    assert request_status(meuse, "routine-2") == WAITING
    assert booking_status(meuse, booking_id) == CANCELLED
    assert slot_holders(meuse) == {S9: "same-day-3"}
    assert [o.what for o in result.observations] == ["cancelled"]


def test_cancel_with_rebook_puts_the_request_back_in_line_never_for_the_same_slot():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1", requested_at=at(6)))
    booking_id = meuse.booking_of("r-1")
    result = meuse.act(action(CANCEL, "cancel", booking_id=booking_id, rebook=True))
    assert booked(result) == []
    request = meuse.agenda.request("r-1")
    assert (request.status, request.booking_id, request.declined_slots) == (WAITING, "", [S9])
    assert meuse.agenda.slot(S9).free
    # The freed slot goes to the next in line, though the rebooked request is first in it.
    assert given(meuse.ask(consultation("r-2", requested_at=at(7)))) == {"r-2": S9}
    # Nor is it offered the slot by hand.
    meuse.act(action(CANCEL, "cancel-2", booking_id=meuse.booking_of("r-2")))
    meuse.act(action(BOOK_SLOT, "book-declined", request_id="r-1", slot_id=S9))
    assert refused(meuse, "book-declined") == "FAILED_PRECONDITION"
    # Another slot: it is rebooked there.
    result = meuse.publish(availability("gp-bld", at(11)))
    assert given(result) == {"r-1": S11}


def test_cancel_with_rebook_when_someone_waits_gives_them_the_slot():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1", requested_at=at(6)))
    meuse.ask(consultation("r-2", requested_at=at(7)))
    result = meuse.act(action(CANCEL, "cancel", booking_id=meuse.booking_of("r-1"), rebook=True))
    assert given(result) == {"r-2": S9}
    assert request_status(meuse, "r-1") == WAITING
    assert [r.request_id for r in meuse.agenda.waiting()] == ["r-1"]


def test_cancel_refuses_a_started_consultation_and_a_free_text_reason():
    meuse = gp_day(9, 10)
    meuse.ask(consultation("r-1"))
    meuse.ask(consultation("r-2"))
    b1, b2 = meuse.booking_of("r-1"), meuse.booking_of("r-2")
    meuse.act(action(RECORD_OUTCOME, "start", booking_id=b1, status=STARTED), now=at(9))
    meuse.act(action(CANCEL, "cancel-started", booking_id=b1), now=at(9, 5))
    assert refused(meuse, "cancel-started") == "FAILED_PRECONDITION"
    meuse.act(action(CANCEL, "free-text", booking_id=b2, reason_code="Mme Dupont est absente"))
    assert refused(meuse, "free-text") == "INVALID_ARGUMENT"
    assert booking_status(meuse, b2) == SCHEDULED
    meuse.act(action(CANCEL, "unknown", booking_id="no-such-booking"))
    assert refused(meuse, "unknown") == "NOT_FOUND"


# --- outcome --------------------------------------------------------------------------


def test_started_then_completed_with_follow_ups():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1", urgency=IMMEDIATE, requested_at=at(7, 45)), now=at(8))
    booking_id = meuse.booking_of("r-1")
    started = meuse.act(
        action(RECORD_OUTCOME, "start", booking_id=booking_id, status=STARTED), now=at(9, 2)
    )
    (status,) = changed(started)
    assert status.status == STARTED
    assert status.request_to_consultation.ToTimedelta() == timedelta(minutes=77)
    assert [(o.what, o.seconds) for o in started.observations] == [("consulted", 77 * 60)]
    assert request_status(meuse, "r-1") == BOOKED
    completed = meuse.act(
        action(
            RECORD_OUTCOME,
            "complete",
            booking_id=booking_id,
            status=COMPLETED,
            follow_ups=[PRESCRIPTION, REFERRAL, REPORT],
            referral_specialty="cardiology",
        ),
        now=at(9, 20),
    )
    (status,) = changed(completed)
    assert status.status == COMPLETED
    assert list(status.follow_ups) == [PRESCRIPTION, REFERRAL, REPORT]
    assert status.referral_specialty == "cardiology"
    assert not status.HasField("request_to_consultation")
    assert [o.what for o in completed.observations] == ["completed"]
    booking = meuse.agenda.booking(booking_id)
    assert (booking.status, booking.follow_ups) == (COMPLETED, [PRESCRIPTION, REFERRAL, REPORT])
    assert request_status(meuse, "r-1") == DONE
    assert meuse.agenda.waiting() == []


def test_no_show_ends_the_request_and_keeps_the_slot():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    booking_id = meuse.booking_of("r-1")
    result = meuse.act(
        action(RECORD_OUTCOME, "no-show", booking_id=booking_id, status=NO_SHOW), now=at(9, 15)
    )
    (status,) = changed(result)
    assert status.status == NO_SHOW
    assert [o.what for o in result.observations] == ["no_show"]
    assert booking_status(meuse, booking_id) == NO_SHOW
    assert request_status(meuse, "r-1") == DONE
    assert meuse.agenda.slot(S9).booking_id == booking_id


@pytest.mark.parametrize(
    ("before", "outcome", "fields", "code"),
    [
        (STARTED, NO_SHOW, {}, "FAILED_PRECONDITION"),
        (COMPLETED, STARTED, {}, "FAILED_PRECONDITION"),
        (NO_SHOW, COMPLETED, {}, "FAILED_PRECONDITION"),
        (CANCELLED, STARTED, {}, "FAILED_PRECONDITION"),
        (None, CANCELLED, {}, "INVALID_ARGUMENT"),
        (None, CONFIRMED, {}, "INVALID_ARGUMENT"),
        (None, STARTED, {"follow_ups": [PRESCRIPTION]}, "INVALID_ARGUMENT"),
        (None, NO_SHOW, {"follow_ups": [REPORT]}, "INVALID_ARGUMENT"),
        (None, COMPLETED, {"follow_ups": [REFERRAL]}, "INVALID_ARGUMENT"),
        (
            None,
            COMPLETED,
            {"follow_ups": [REFERRAL], "referral_specialty": "Dr Martin"},
            "INVALID_ARGUMENT",
        ),
    ],
)
def test_invalid_outcomes_are_refused_and_change_nothing(before, outcome, fields, code):
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    booking_id = meuse.booking_of("r-1")
    if before == CANCELLED:
        meuse.act(action(CANCEL, "before", booking_id=booking_id))
    elif before is not None:
        meuse.act(
            action(RECORD_OUTCOME, "before", booking_id=booking_id, status=before), now=at(9, 5)
        )
    state = meuse.agenda.booking(booking_id)
    result = meuse.act(
        action(RECORD_OUTCOME, "outcome", booking_id=booking_id, status=outcome, **fields),
        now=at(9, 30),
    )
    assert (result.outcome, result.facts) == ("refused", [])
    assert refused(meuse, "outcome") == code
    assert meuse.agenda.booking(booking_id) == state


# --- duplicates -----------------------------------------------------------------------


def test_an_action_applied_twice_is_applied_once():
    meuse = gp_day(9, 10)
    meuse.ask(consultation("r-1"))
    meuse.ask(consultation("r-2"))
    meuse.ask(consultation("r-3"))
    cancel = action(CANCEL, "cancel-r-1", booking_id=meuse.booking_of("r-1"))
    first = meuse.act(cancel)
    assert given(first) == {"r-3": S9}
    meuse.ask(consultation("r-4"))
    again = meuse.act(cancel)
    assert (again.outcome, again.facts) == ("duplicate", [])
    assert slot_holders(meuse) == {S9: "r-3", S10: "r-2"}
    assert request_status(meuse, "r-4") == WAITING


def test_a_refused_action_applied_twice_stays_refused_once():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    meuse.ask(consultation("r-2"))
    book = action(BOOK_SLOT, "book-r-2", request_id="r-2", slot_id=S9)
    assert meuse.act(book).outcome == "refused"
    meuse.act(action(CANCEL, "cancel-r-1", booking_id=meuse.booking_of("r-1")))
    # The slot went to r-2 by the line; the old action is not applied again.
    assert meuse.act(book).outcome == "duplicate"
    assert refused(meuse, "book-r-2") == "FAILED_PRECONDITION"


def test_an_unknown_action_is_an_invalid_event_and_not_recorded():
    meuse = gp_day(9)
    with pytest.raises(InvalidEventError):
        meuse.act(action(0, "nothing"))
    assert meuse.outcome("nothing") is None


# --- availability ---------------------------------------------------------------------


def test_a_slot_published_again_is_ignored_and_its_booking_stands():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    booking_id = meuse.booking_of("r-1")
    meuse.publish(availability("gp-bld", at(9)))
    slot = meuse.agenda.slot(S9)
    assert (slot.start, slot.booking_id) == (at(9), booking_id)


def test_a_slot_id_reused_for_another_time_is_refused_and_the_booking_stands():
    meuse = gp_day(9)
    meuse.ask(consultation("r-1"))
    booking_id = meuse.booking_of("r-1")
    moved = availability("gp-bld", at(15))
    moved.slots[0].slot_id = S9
    with pytest.raises(InvalidEventError, match="already another slot"):
        meuse.publish(moved)
    slot = meuse.agenda.slot(S9)
    assert (slot.start, slot.booking_id) == (at(9), booking_id)


def test_a_practitioner_cannot_publish_overlapping_slots():
    meuse = gp_day(9)  # 09:00-09:20
    overlapping = availability("gp-bld", at(9, 10))
    overlapping.slots[0].slot_id = "another-id"
    with pytest.raises(InvalidEventError, match="overlaps"):
        meuse.publish(overlapping)
    with pytest.raises(InvalidEventError, match="overlaps"):
        meuse.publish(availability("gp-bld", at(11), at(11, 10)))
    assert meuse.agenda.slot("another-id") is None
    meuse.publish(availability("gp-bld", at(9, 20)))  # back to back is fine


@pytest.mark.parametrize("fault", ["unregistered", "other practitioner", "no duration", "no id"])
def test_an_invalid_availability_is_refused(fault):
    meuse = gp_day()
    message = availability("gp-bld", at(9))
    if fault == "unregistered":
        message.practitioner_id = "gp-unknown"
        message.slots[0].practitioner_id = ""
    elif fault == "other practitioner":
        message.slots[0].practitioner_id = "gp-verdun"
    elif fault == "no duration":
        message.slots[0].ClearField("duration")
    else:
        message.slots[0].slot_id = ""
    with pytest.raises(InvalidEventError):
        meuse.publish(message)
    assert meuse.agenda.slots() == []


def test_an_availability_refused_as_invalid_changes_nothing():
    meuse = gp_day()
    meuse.ask(consultation("r-1"))
    message = availability("gp-bld", at(9), at(10))
    message.slots[1].practitioner_id = "gp-verdun"
    with pytest.raises(InvalidEventError):
        meuse.publish(message)
    assert meuse.agenda.slots() == []
