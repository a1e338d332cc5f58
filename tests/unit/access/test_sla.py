"""Requests not booked within their urgency's delay are flagged to the coordinator, once."""

import contextlib
from datetime import timedelta

from emeuse.runtime.codec import InvalidEventError
from services.access.config import parse_coordinators
from services.access.domain.agenda import booking_deadline
from services.access.scheduling import apply_action, due_delays
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    CANCEL,
    DELAY_DUE,
    DELAYS,
    IMMEDIATE,
    NOW,
    ROUTINE,
    SAME_DAY,
    WITHIN_7_DAYS,
    Meuse,
    action,
    at,
    availability,
    consultation,
    flagged,
    practitioner,
)


def waiting_line():
    """Four requests asked at 08:00, one per urgency, and no GP slot."""
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    for name, urgency in (
        ("immediate", IMMEDIATE),
        ("same-day", SAME_DAY),
        ("week", WITHIN_7_DAYS),
        ("routine", ROUTINE),
    ):
        meuse.ask(consultation(name, urgency=urgency, requested_at=NOW))
    return meuse


def due(meuse, now):
    return [a.request_id for a in due_delays(meuse.agenda, now, DELAYS)]


def test_default_delays_by_urgency():
    delays = dict(DELAYS)
    assert delays == {
        IMMEDIATE: timedelta(minutes=15),
        SAME_DAY: timedelta(hours=2),
        WITHIN_7_DAYS: timedelta(days=1),
        ROUTINE: timedelta(days=3),
    }
    request = waiting_line().agenda.request("same-day")
    assert booking_deadline(request, DELAYS) == at(10)


def test_due_delays_names_only_requests_past_their_urgencys_delay():
    meuse = waiting_line()
    assert due(meuse, at(8, 14)) == []
    assert due(meuse, at(8, 15)) == ["immediate"]
    assert due(meuse, at(9, 59)) == ["immediate"]
    assert due(meuse, at(10)) == ["immediate", "same-day"]
    assert due(meuse, at(8, days=1)) == ["immediate", "same-day", "week"]
    assert due(meuse, at(8, days=3)) == ["immediate", "same-day", "week", "routine"]
    (tick,) = due_delays(meuse.agenda, at(8, 20), DELAYS)
    assert (tick.action, tick.territory, tick.request_id) == (DELAY_DUE, "55", "immediate")
    # The same request gets the same action id at every tick: applied once.
    assert tick.action_id == due_delays(meuse.agenda, at(9), DELAYS)[0].action_id


def test_a_due_request_is_flagged_once_with_the_territorys_coordinator():
    meuse = waiting_line()
    (tick,) = due_delays(meuse.agenda, at(8, 16), DELAYS)
    result = meuse.act(tick, now=at(8, 16))
    assert result.outcome == "flagged"
    (flag,) = flagged(result)
    assert flag.request_id == "immediate"
    assert flag.territory == "55"
    assert flag.patient_pseudonym == consultation("immediate").patient_pseudonym
    assert flag.urgency == IMMEDIATE
    assert flag.coordinator_id == "dac-meuse"
    assert flag.waited.ToTimedelta() == timedelta(minutes=16)
    assert flag.flagged_at.ToDatetime().replace(tzinfo=NOW.tzinfo) == at(8, 16)
    assert [(o.what, o.seconds) for o in result.observations] == [("flagged", 16 * 60)]
    assert meuse.agenda.request("immediate").flagged_at == at(8, 16)
    # Flagged, it is no longer due; the same tick again is a duplicate.
    assert due(meuse, at(8, 17)) == []
    again = meuse.act(tick, now=at(8, 17))
    assert (again.outcome, again.facts) == ("duplicate", [])


def test_the_default_coordinator_of_a_territory():
    meuse = waiting_line()
    (tick,) = due_delays(meuse.agenda, at(8, 16), DELAYS)
    result = apply_action(
        meuse.agenda, tick, at(8, 16), delays=DELAYS, coordinators=parse_coordinators("X", "")
    )
    assert flagged(result)[0].coordinator_id == "coordination-55"


def test_a_tick_before_the_delay_does_nothing_and_a_later_one_still_flags():
    meuse = waiting_line()
    tick = action(DELAY_DUE, "tick-same-day", request_id="same-day")
    early = meuse.act(tick, now=at(9))
    assert (early.outcome, early.facts) == ("not_due", [])
    assert meuse.outcome("tick-same-day") is None
    assert meuse.agenda.request("same-day").flagged_at is None
    late = meuse.act(tick, now=at(10, 1))
    assert [f.request_id for f in flagged(late)] == ["same-day"]
    assert meuse.outcome("tick-same-day") == {"ok": True}


def test_a_booked_request_is_never_flagged():
    meuse = waiting_line()
    meuse.publish(availability("gp-bld", at(9)), now=at(8, 5))
    assert meuse.agenda.request("immediate").booking_id
    assert due(meuse, at(8, days=5)) == ["same-day", "week", "routine"]
    result = meuse.act(action(DELAY_DUE, "tick", request_id="immediate"), now=at(9, days=5))
    assert (result.outcome, result.facts) == ("not_due", [])
    assert meuse.agenda.request("immediate").flagged_at is None


def test_an_unknown_or_cancelled_request_is_not_flagged():
    meuse = waiting_line()
    meuse.publish(availability("gp-bld", at(9)), now=at(8, 5))
    meuse.act(action(CANCEL, "cancel", booking_id=meuse.booking_of("immediate")), now=at(8, 6))
    later = at(8, days=5)
    assert "immediate" not in due(meuse, later)
    for request_id in ("immediate", "no-such-request"):
        result = meuse.act(action(DELAY_DUE, f"tick-{request_id}", request_id=request_id), later)
        assert result.facts == []


def test_a_flagged_request_booked_later_is_not_flagged_again_when_back_in_line():
    meuse = waiting_line()
    for tick in due_delays(meuse.agenda, at(8, 16), DELAYS):
        meuse.act(tick, now=at(8, 16))
    meuse.publish(availability("gp-bld", at(9)), now=at(8, 20))
    booking_id = meuse.booking_of("immediate")
    meuse.act(action(CANCEL, "cancel", booking_id=booking_id, rebook=True), now=at(8, 30))
    assert meuse.agenda.request("immediate").flagged_at == at(8, 16)
    assert "immediate" not in due(meuse, at(12))


def test_a_request_with_an_unknown_urgency_does_not_stop_the_flags_of_the_territory():
    meuse = waiting_line()
    odd = consultation("odd-urgency")
    odd.urgency = 9
    with contextlib.suppress(InvalidEventError):  # refusing it is fine too
        meuse.ask(odd)
    assert due(meuse, at(8, 16)) == ["immediate"]
