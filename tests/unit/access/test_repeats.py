"""A booking action asked again after a lost answer (a new action id, the same request)
answers as the first time: the same booking, no second fact. Each row is one gRPC write."""

import pytest

from emeuse.access.v1.access_events_pb2 import ConsultationStatus, FollowUp
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    BOOK_SLOT,
    CANCEL,
    CONFIRM,
    RECORD_OUTCOME,
    RESCHEDULE,
    Meuse,
    action,
    at,
    availability,
    consultation,
    practitioner,
)

STARTED = ConsultationStatus.CONSULTATION_STATUS_STARTED
COMPLETED = ConsultationStatus.CONSULTATION_STATUS_COMPLETED
NO_SHOW = ConsultationStatus.CONSULTATION_STATUS_NO_SHOW
PRESCRIPTION = FollowUp.FOLLOW_UP_PRESCRIPTION_ISSUED
S9, S10 = "gp-bld-1130-0900", "gp-bld-1130-1000"


def booked_at_nine() -> tuple[Meuse, str]:
    """r-1 booked at 9:00; a free slot at 10:00."""
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(9)))
    meuse.ask(consultation("r-1"))
    meuse.publish(availability("gp-bld", at(10)))
    return meuse, meuse.booking_of("r-1")


def book_slot(meuse: Meuse, booking: str, action_id: str):
    # r-1's booking cancelled to be rebooked by hand: BookSlot then books 10:00 for it.
    if action_id.endswith("-1"):
        meuse.act(action(CANCEL, "free-r-1", booking_id=booking, rebook=False))
        meuse.agenda.save_request(
            meuse.agenda.request("r-1").model_copy(update={"status": 1, "booking_id": ""})
        )
    return action(BOOK_SLOT, action_id, request_id="r-1", slot_id=S10)


ROWS = {
    "BookSlot": book_slot,
    "ConfirmBooking": lambda m, b, i: action(CONFIRM, i, booking_id=b),
    "RescheduleBooking": lambda m, b, i: action(RESCHEDULE, i, booking_id=b, slot_id=S10),
    "CancelBooking": lambda m, b, i: action(CANCEL, i, booking_id=b, reason_code="patient.away"),
    "CancelBooking rebook": lambda m, b, i: action(CANCEL, i, booking_id=b, rebook=True),
    "RecordConsultationOutcome started": lambda m, b, i: action(
        RECORD_OUTCOME, i, booking_id=b, status=STARTED
    ),
    "RecordConsultationOutcome completed": lambda m, b, i: action(
        RECORD_OUTCOME, i, booking_id=b, status=COMPLETED, follow_ups=[PRESCRIPTION]
    ),
    "RecordConsultationOutcome no-show": lambda m, b, i: action(
        RECORD_OUTCOME, i, booking_id=b, status=NO_SHOW
    ),
}


@pytest.mark.parametrize("write", ROWS.values(), ids=ROWS.keys())
def test_a_booking_action_asked_again_answers_as_the_first_time(write):
    meuse, booking = booked_at_nine()
    first = meuse.act(write(meuse, booking, "call-1"), now=at(9, 5))
    assert meuse.outcome("call-1")["ok"], meuse.outcome("call-1")
    facts_after_first = len(meuse.facts)
    again = meuse.act(write(meuse, booking, "call-2"), now=at(9, 6))
    assert meuse.outcome("call-2") == meuse.outcome("call-1")
    assert again.facts == []
    assert len(meuse.facts) == facts_after_first
    assert first.outcome != again.outcome  # the second was recognised, not applied again


def test_a_different_action_on_a_settled_booking_is_still_refused():
    meuse, booking = booked_at_nine()
    meuse.act(action(RECORD_OUTCOME, "done", booking_id=booking, status=COMPLETED), now=at(9, 5))
    meuse.act(action(RECORD_OUTCOME, "no-show", booking_id=booking, status=NO_SHOW), now=at(9, 6))
    assert meuse.outcome("no-show")["code"] == "FAILED_PRECONDITION"
    meuse.act(action(CANCEL, "cancel", booking_id=booking), now=at(9, 7))
    assert meuse.outcome("cancel")["code"] == "FAILED_PRECONDITION"


def test_a_rescheduled_booking_cannot_be_moved_again_to_another_slot_nor_cancelled():
    meuse, booking = booked_at_nine()
    meuse.publish(availability("gp-bld", at(11)))
    meuse.act(action(RESCHEDULE, "move", booking_id=booking, slot_id=S10), now=at(8))
    meuse.act(action(RESCHEDULE, "elsewhere", booking_id=booking, slot_id="gp-bld-1130-1100"))
    assert meuse.outcome("elsewhere")["code"] == "FAILED_PRECONDITION"
    meuse.act(action(CANCEL, "cancel-old", booking_id=booking))
    assert meuse.outcome("cancel-old")["code"] == "FAILED_PRECONDITION"
