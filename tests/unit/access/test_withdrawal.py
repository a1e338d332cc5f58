"""WithdrawRequest: a waiting request leaves the line with a reason, audited by a
RequestWithdrawn fact; the slot it would have had goes to the next in line."""

import pytest

from emeuse.access.v1.access_events_pb2 import BookingAction, WithdrawalReason
from emeuse.registry import REQUEST_WITHDRAWN
from services.access.domain.agenda import WITHDRAWN
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    Meuse,
    action,
    at,
    availability,
    consultation,
    given,
    practitioner,
)

WITHDRAW = BookingAction.BOOKING_ACTION_WITHDRAW
DECLINED = WithdrawalReason.WITHDRAWAL_REASON_PATIENT_DECLINED
NOT_NEEDED = WithdrawalReason.WITHDRAWAL_REASON_NO_LONGER_NEEDED


def line_of_two() -> Meuse:
    """No slot yet: first and second wait, first ahead."""
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.ask(consultation("first", requested_at=at(7)))
    meuse.ask(consultation("second", requested_at=at(7, 30)))
    return meuse


def withdraw(request_id: str, action_id: str, reason: int = NOT_NEEDED, **fields: object):
    return action(WITHDRAW, action_id, request_id=request_id, withdrawal_reason=reason, **fields)


def test_a_withdrawn_request_leaves_the_line_and_its_slot_goes_to_the_next():
    meuse = line_of_two()
    result = meuse.act(withdraw("first", "w-1", reason_code="patient.seen_elsewhere"), now=at(8))
    [fact] = result.facts
    assert fact.spec is REQUEST_WITHDRAWN
    assert (fact.message.request_id, fact.message.reason) == ("first", NOT_NEEDED)
    assert fact.message.reason_code == "patient.seen_elsewhere"
    assert fact.message.withdrawn_by == "ide-ehpad-55029"
    assert fact.message.waited.ToSeconds() == 3600
    assert [r.request_id for r in meuse.agenda.waiting()] == ["second"]
    published = meuse.publish(availability("gp-bld", at(9)))
    assert given(published) == {"second": "gp-bld-1130-0900"}
    assert meuse.agenda.request("first").status == WITHDRAWN


def test_withdrawing_again_for_the_same_reason_answers_as_the_first_time():
    meuse = line_of_two()
    meuse.act(withdraw("first", "w-1"))
    again = meuse.act(withdraw("first", "w-2"))
    assert (again.outcome, again.facts) == ("already_withdrawn", [])
    assert meuse.outcome("w-2") == meuse.outcome("w-1") == {"ok": True, "booking_id": ""}


@pytest.mark.parametrize(
    ("request_id", "reason", "fields", "code"),
    [
        ("nobody", NOT_NEEDED, {}, "NOT_FOUND"),
        ("first", 0, {}, "INVALID_ARGUMENT"),
        ("first", NOT_NEEDED, {"reason_code": "Mme X ne viendra pas"}, "INVALID_ARGUMENT"),
        ("booked", NOT_NEEDED, {}, "FAILED_PRECONDITION"),
        ("withdrawn", DECLINED, {}, "FAILED_PRECONDITION"),
    ],
)
def test_a_withdrawal_that_cannot_apply_is_refused_with_its_reason(
    request_id, reason, fields, code
):
    meuse = line_of_two()
    meuse.ask(consultation("withdrawn"))
    meuse.act(withdraw("withdrawn", "before"))
    meuse.publish(availability("gp-bld", at(9)))
    meuse.ask(consultation("booked"))
    meuse.publish(availability("gp-bld", at(10)))
    meuse.publish(availability("gp-bld", at(11)))
    assert meuse.agenda.request("booked").booking_id
    result = meuse.act(withdraw(request_id, "w", reason, **fields))
    assert result.facts == []
    assert meuse.outcome("w")["code"] == code
    assert meuse.agenda.request("booked").status != WITHDRAWN
