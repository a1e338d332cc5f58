"""Which request gets which slot: urgency, time, distance, profession, modality, line."""

import pytest

from emeuse.access.v1.access_events_pb2 import FollowUp, PlaceKind
from emeuse.runtime.codec import InvalidEventError
from services.access.domain.agenda import BOOKED, WAITING, Location
from services.access.domain.matching import distance_km
from services.access.scheduling import Agenda, check_referral, request_consultation
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    BOOK_SLOT,
    CANCEL,
    COMMERCY,
    FIRST_LINE,
    IMMEDIATE,
    NOW,
    NURSE,
    NURSE_ASSISTED,
    PHONE,
    RECORD_OUTCOME,
    ROUTINE,
    SAME_DAY,
    SECOND_LINE,
    SPECIALIST,
    VERDUN,
    VIDEO,
    WITHIN_7_DAYS,
    Meuse,
    action,
    at,
    availability,
    booked,
    consultation,
    given,
    place,
    practitioner,
    slot_id,
)

CABIN_COMMERCY = place(COMMERCY, PlaceKind.PLACE_KIND_PHARMACY_CABIN, (VIDEO,), "cabin-55122")
EHPAD_VERDUN = place(VERDUN, PlaceKind.PLACE_KIND_EHPAD, (NURSE_ASSISTED, VIDEO), "ehpad-55545")


def status(meuse, request_id):
    request = meuse.agenda.request(request_id)
    assert request is not None
    return request.status


def test_meuse_distances_are_great_circle_kilometres():
    def loc(town):
        return Location(latitude=town.latitude, longitude=town.longitude)

    assert distance_km(loc(COMMERCY), loc(BAR_LE_DUC)) == pytest.approx(31.5, abs=1)
    assert distance_km(loc(COMMERCY), loc(VERDUN)) == pytest.approx(47.0, abs=1.5)
    assert distance_km(loc(BAR_LE_DUC), loc(VERDUN)) == pytest.approx(46.2, abs=0.5)
    assert distance_km(Location(), loc(VERDUN)) == 0.0


def test_a_published_slot_goes_to_the_most_urgent_request_not_the_earliest():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.ask(consultation("routine-early", urgency=ROUTINE, requested_at=at(6)))
    meuse.ask(consultation("week-early", urgency=WITHIN_7_DAYS, requested_at=at(6, 30)))
    meuse.ask(consultation("immediate-late", urgency=IMMEDIATE, requested_at=at(7, 50)))
    meuse.ask(consultation("same-day", urgency=SAME_DAY, requested_at=at(7)))
    assert [r.request_id for r in meuse.agenda.waiting()] == [
        "immediate-late",
        "same-day",
        "week-early",
        "routine-early",
    ]
    result = meuse.publish(availability("gp-bld", at(9)))
    assert given(result) == {"immediate-late": "gp-bld-1130-0900"}
    assert status(meuse, "routine-early") == WAITING


def test_a_freed_slot_goes_to_an_immediate_request_before_an_earlier_routine_one():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(9)))
    meuse.ask(consultation("first", requested_at=at(6)))
    meuse.ask(consultation("routine", urgency=ROUTINE, requested_at=at(7)))
    meuse.ask(consultation("immediate", urgency=IMMEDIATE, requested_at=at(7, 55)))
    result = meuse.act(action(CANCEL, "cancel-first", booking_id=meuse.booking_of("first")))
    assert given(result) == {"immediate": "gp-bld-1130-0900"}
    assert status(meuse, "routine") == WAITING


def test_at_equal_urgency_the_earliest_request_is_served_whatever_the_arrival_order():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.ask(consultation("asked-at-7h30", urgency=SAME_DAY, requested_at=at(7, 30)))
    meuse.ask(consultation("asked-at-6h", urgency=SAME_DAY, requested_at=at(6)))
    meuse.ask(consultation("asked-at-7h", urgency=SAME_DAY, requested_at=at(7)))
    result = meuse.publish(availability("gp-bld", at(9), at(10)))
    assert given(result) == {
        "asked-at-6h": "gp-bld-1130-0900",
        "asked-at-7h": "gp-bld-1130-1000",
    }
    assert [b.request_id for b in booked(result)] == ["asked-at-6h", "asked-at-7h"]
    assert status(meuse, "asked-at-7h30") == WAITING


def test_the_earliest_slot_wins_even_when_farther():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.register(practitioner("gp-verdun", VERDUN))
    meuse.publish(availability("gp-bld", at(10), at(9, 30)))
    meuse.publish(availability("gp-verdun", at(9)))
    (slot,) = booked(meuse.ask(consultation("r-1", where=cabin(BAR_LE_DUC))))
    assert (slot.practitioner_id, slot.slot_id) == ("gp-verdun", "gp-verdun-1130-0900")
    assert slot.distance_km == pytest.approx(46.2, abs=0.5)


def test_distance_breaks_ties_between_equally_early_slots():
    meuse = Meuse()
    # The farther slot sorts first by id: only the distance can pick the nearer one.
    meuse.register(practitioner("a-gp-verdun", VERDUN))
    meuse.register(practitioner("b-gp-bld", BAR_LE_DUC))
    meuse.publish(availability("a-gp-verdun", at(9)))
    meuse.publish(availability("b-gp-bld", at(9)))
    (slot,) = booked(meuse.ask(consultation("from-commercy", where=cabin(COMMERCY))))
    assert slot.practitioner_id == "b-gp-bld"
    assert slot.distance_km == pytest.approx(31.5, abs=1)
    (other,) = booked(meuse.ask(consultation("from-verdun", where=cabin(VERDUN))))
    assert (other.practitioner_id, other.distance_km) == ("a-gp-verdun", 0.0)


def test_a_home_has_no_distance_so_the_slot_id_breaks_ties():
    meuse = Meuse()
    # A home is located by its commune alone: no coordinates, no distance to rank by.
    meuse.register(practitioner("a-gp-verdun", VERDUN))
    meuse.register(practitioner("b-gp-bld", BAR_LE_DUC))
    meuse.publish(availability("a-gp-verdun", at(9)))
    meuse.publish(availability("b-gp-bld", at(9)))
    (slot,) = booked(meuse.ask(consultation("from-home", where=place(BAR_LE_DUC))))
    assert (slot.practitioner_id, slot.distance_km) == ("a-gp-verdun", 0.0)


def cabin(town):
    """A pharmacy teleconsultation cabin: a located place (a home is not)."""
    return place(town, PlaceKind.PLACE_KIND_PHARMACY_CABIN, (VIDEO,), f"cabin-{town.commune}")


def test_the_profession_must_match():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.register(practitioner("ide-bld", BAR_LE_DUC, profession=NURSE))
    meuse.publish(availability("gp-bld", at(9)))
    meuse.publish(availability("ide-bld", at(11)))
    dressing = consultation("wound-care", profession=NURSE, reason="wound.dressing")
    assert given(meuse.ask(dressing)) == {"wound-care": "ide-bld-1130-1100"}
    # Unspecified profession means a GP.
    assert given(meuse.ask(consultation("gp-any", profession=0))) == {"gp-any": "gp-bld-1130-0900"}
    assert booked(meuse.ask(consultation("second-wound", profession=NURSE))) == []
    assert status(meuse, "second-wound") == WAITING


def test_the_specialty_must_match():
    meuse = Meuse()
    # Ophthalmology and gynaecology are consulted directly (first line) in France.
    for pid, specialty in (("oph-verdun", "ophthalmology"), ("gyn-verdun", "gynaecology")):
        meuse.register(practitioner(pid, VERDUN, profession=SPECIALIST, specialty=specialty))
        meuse.publish(availability(pid, at(9)))
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(16)))
    eye = consultation("eye", profession=SPECIALIST, specialty="ophthalmology")
    assert given(meuse.ask(eye)) == {"eye": "oph-verdun-1130-0900"}
    # A GP request does not take a specialist's earlier slot, nor the reverse.
    assert given(meuse.ask(consultation("gp"))) == {"gp": "gp-bld-1130-1600"}
    derm = consultation("skin", profession=SPECIALIST, specialty="dermatology")
    assert booked(meuse.ask(derm)) == []
    assert status(meuse, "skin") == WAITING
    assert meuse.agenda.slot("gyn-verdun-1130-0900").free


def test_a_modality_the_patients_place_does_not_offer_is_not_used():
    meuse = Meuse()
    meuse.register(practitioner("gp-phone", BAR_LE_DUC, modalities=(PHONE,)))
    meuse.register(practitioner("gp-video", VERDUN, modalities=(VIDEO, PHONE)))
    meuse.publish(availability("gp-phone", at(9)))
    meuse.publish(availability("gp-video", at(10)))
    meuse.publish(availability("gp-video", at(8, 30), modalities=(PHONE,)))
    (slot,) = booked(meuse.ask(consultation("cabin", where=CABIN_COMMERCY)))
    assert (slot.slot_id, slot.modality) == ("gp-video-1130-1000", VIDEO)


def test_a_modality_asked_for_that_the_place_does_not_offer_is_never_booked():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC, modalities=(VIDEO, PHONE)))
    meuse.publish(availability("gp-bld", at(9), at(10)))
    phone_from_cabin = consultation("phone", where=CABIN_COMMERCY, modality=PHONE)
    assert booked(meuse.ask(phone_from_cabin)) == []
    assert status(meuse, "phone") == WAITING


def test_any_modality_prefers_video_then_nurse_assisted_then_phone():
    meuse = Meuse()
    meuse.register(practitioner("gp-all", VERDUN, modalities=(PHONE, NURSE_ASSISTED, VIDEO)))
    meuse.publish(availability("gp-all", at(9), at(10), at(11)))
    meuse.publish(availability("gp-all", at(12), modalities=(NURSE_ASSISTED, PHONE)))
    home = consultation("home", where=place(VERDUN))
    assert booked(meuse.ask(home))[0].modality == VIDEO
    ehpad = consultation("ehpad", where=EHPAD_VERDUN, modality=NURSE_ASSISTED)
    assert booked(meuse.ask(ehpad))[0].modality == NURSE_ASSISTED
    phone = consultation("phone", where=place(VERDUN), modality=PHONE)
    assert booked(meuse.ask(phone))[0].modality == PHONE
    # Only nurse-assisted and phone left on the slot: nurse-assisted, where the place has one.
    (last,) = booked(meuse.ask(consultation("ehpad-2", where=EHPAD_VERDUN)))
    assert (last.slot_id, last.modality) == ("gp-all-1130-1200", NURSE_ASSISTED)


def referred_patient(meuse, who="cardio-patient"):
    """A GP consultation that referred the patient to cardiology; its booking id."""
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(9)))
    meuse.ask(consultation("gp-visit", who=who))
    booking_id = meuse.booking_of("gp-visit")
    meuse.act(
        action(
            RECORD_OUTCOME,
            "gp-visit-done",
            booking_id=booking_id,
            status=4,
            follow_ups=[FollowUp.FOLLOW_UP_REFERRAL_TO_SPECIALIST],
            referral_specialty="cardiology",
        ),
        now=at(9, 20),
    )
    return booking_id


def cardiologist(practitioner_id, town, care_line):
    return practitioner(
        practitioner_id, town, profession=SPECIALIST, specialty="cardiology", care_line=care_line
    )


def cardiology(request_id, who="cardio-patient", referral=""):
    return consultation(
        request_id, who=who, profession=SPECIALIST, specialty="cardiology", referral=referral
    )


def test_second_line_care_needs_a_referral():
    meuse = Meuse()
    meuse.register(cardiologist("cardio-verdun", VERDUN, SECOND_LINE))
    meuse.publish(availability("cardio-verdun", at(14)))
    assert booked(meuse.ask(cardiology("no-referral", who="other-patient"))) == []
    assert status(meuse, "no-referral") == WAITING
    referral = referred_patient(meuse)
    later = at(9, 30)
    result = meuse.ask(cardiology("referred", referral=referral), now=later)
    assert given(result) == {"referred": "cardio-verdun-1130-1400"}
    assert status(meuse, "no-referral") == WAITING


@pytest.mark.parametrize(
    "case",
    ["unknown booking", "other patient", "not completed", "no referral follow-up"],
)
def test_check_referral_refuses_what_is_not_a_completed_referring_consultation(case):
    meuse = Meuse()
    meuse.register(practitioner("gp-verdun", VERDUN))
    meuse.publish(availability("gp-verdun", at(11)))
    if case == "unknown booking":
        referral = "no-such-booking"
    elif case == "other patient":
        referral = referred_patient(meuse, who="someone-else")
    elif case == "not completed":
        meuse.ask(consultation("scheduled-visit", who="cardio-patient"))
        referral = meuse.booking_of("scheduled-visit")
    else:
        meuse.ask(consultation("prescribed-visit", who="cardio-patient"))
        referral = meuse.booking_of("prescribed-visit")
        meuse.act(
            action(
                RECORD_OUTCOME,
                "prescribed",
                booking_id=referral,
                status=4,
                follow_ups=[FollowUp.FOLLOW_UP_PRESCRIPTION_ISSUED],
            )
        )
    message = cardiology("refused", referral=referral)
    with pytest.raises(InvalidEventError, match="referral"):
        check_referral(meuse.agenda, message)
    with pytest.raises(InvalidEventError):
        meuse.ask(message)
    assert meuse.agenda.request("refused") is None


def test_check_referral_accepts_the_referring_consultation_and_no_referral():
    meuse = Meuse()
    referral = referred_patient(meuse)
    check_referral(meuse.agenda, cardiology("ok", referral=referral))
    check_referral(meuse.agenda, cardiology("none"))


def test_first_line_is_preferred_over_an_earlier_second_line_slot():
    meuse = Meuse()
    meuse.register(cardiologist("cardio-hospital", VERDUN, SECOND_LINE))
    meuse.register(cardiologist("cardio-msp", COMMERCY, FIRST_LINE))
    meuse.publish(availability("cardio-hospital", at(10)))
    meuse.publish(availability("cardio-msp", at(16)))
    referral = referred_patient(meuse)
    (slot,) = booked(meuse.ask(cardiology("referred", referral=referral), now=at(9, 30)))
    assert slot.practitioner_id == "cardio-msp"


def test_a_slot_already_started_is_never_booked():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(9), at(11)), now=at(8))
    ten = at(10)
    assert given(meuse.ask(consultation("r-1"), now=ten)) == {"r-1": "gp-bld-1130-1100"}
    assert booked(meuse.ask(consultation("r-2"), now=ten)) == []
    assert status(meuse, "r-2") == WAITING
    refused = meuse.act(
        action(BOOK_SLOT, "book-past", request_id="r-2", slot_id="gp-bld-1130-0900"), now=ten
    )
    assert refused.outcome == "refused"
    assert meuse.outcome("book-past")["code"] == "FAILED_PRECONDITION"
    assert meuse.agenda.slot("gp-bld-1130-0900").free


def test_a_slot_starting_now_can_still_be_booked():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(9)))
    assert given(meuse.ask(consultation("r-1"), now=at(9))) == {"r-1": "gp-bld-1130-0900"}


def test_an_inactive_practitioner_is_not_booked_until_active_again():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC, active=False))
    meuse.publish(availability("gp-bld", at(9)))
    assert booked(meuse.ask(consultation("r-1"))) == []
    assert status(meuse, "r-1") == WAITING
    result = meuse.register(practitioner("gp-bld", BAR_LE_DUC, active=True))
    assert given(result) == {"r-1": slot_id("gp-bld", at(9))}
    assert status(meuse, "r-1") == BOOKED


def test_a_practitioner_made_inactive_keeps_booked_consultations_but_gets_no_more():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(9), at(10)))
    meuse.ask(consultation("r-1"))
    meuse.register(practitioner("gp-bld", BAR_LE_DUC, active=False))
    assert booked(meuse.ask(consultation("r-2"))) == []
    booking = meuse.agenda.booking(meuse.booking_of("r-1"))
    assert booking is not None and booking.active
    assert booking.start > NOW


def test_territories_share_the_tables_but_not_their_agendas():
    meuse = Meuse()
    meuse.register(practitioner("gp-bld", BAR_LE_DUC))
    meuse.publish(availability("gp-bld", at(9)))
    nancy = Agenda("54", meuse.tables)
    asked = consultation("r-54", where=place(None))
    asked.territory = "54"
    assert request_consultation(nancy, asked, NOW).facts == []
    assert [r.request_id for r in nancy.waiting()] == ["r-54"]
    assert meuse.agenda.requests() == []
    assert meuse.agenda.slot("gp-bld-1130-0900").free
