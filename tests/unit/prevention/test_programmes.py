"""Screening and vaccination: which national programmes an age band is invited to, and
the reminders it gets (French national programmes)."""

from datetime import timedelta

import pytest

from emeuse.prevention.v1.prevention_events_pb2 import DeliveryStatus
from services.prevention.domain.channels import choose_channel
from services.prevention.domain.person import PersonState
from services.prevention.domain.programmes import BY_NAME, programmes_for
from services.prevention.handlers import enrol, record_receipt, send_message
from tests.unit.prevention.people import DELAYS, NOW, enrolled, enrolment, receipt, send


def names(band_from: int, band_to: int) -> set[str]:
    return {programme.name for programme in programmes_for(band_from, band_to)}


def test_age_band_50_54_gets_colorectal_and_breast_screening() -> None:
    assert names(50, 54) == {"screening.colorectal", "screening.breast"}


def test_age_band_11_14_gets_hpv_vaccination() -> None:
    assert names(11, 14) == {"vaccination.hpv"}


def test_age_band_30_34_gets_nothing() -> None:
    assert names(30, 34) == set()


def test_screening_invites_only_bands_wholly_within_50_to_74() -> None:
    screening = {"screening.colorectal", "screening.breast"}
    assert names(50, 54) == screening
    assert names(70, 74) == screening
    assert names(74, 79) == set()  # may be 79
    assert names(45, 50) == set()  # may be 45
    assert names(45, 49) == set()
    assert names(11, 14) == {"vaccination.hpv"}
    assert names(10, 14) == set()
    assert names(15, 19) == set()


def test_a_band_ages_so_screening_rounds_stop_before_74() -> None:
    colorectal = BY_NAME["screening.colorectal"]
    assert colorectal.invites(70, 74, years_later=0)
    assert not colorectal.invites(70, 74, years_later=2)  # 72-76 by the next round
    assert colorectal.invites(50, 54, years_later=20)  # 70-74
    assert not colorectal.invites(50, 54, years_later=21)


@pytest.mark.parametrize(("band_from", "band_to"), [(60, 55), (-5, 4), (115, 121)])
def test_an_impossible_age_band_is_refused(band_from: int, band_to: int) -> None:
    with pytest.raises(ValueError, match="age band"):
        programmes_for(band_from, band_to)


def test_the_channel_is_the_first_the_person_allows_that_we_send_on() -> None:
    assert choose_channel(["fax", "sms", "app"]) == "sms"
    assert choose_channel(["sms", "app"], refused=["sms"]) == "app"
    assert choose_channel(["sms", "app"], tried=["sms", "app"]) is None


def test_a_person_aged_50_54_gets_two_screening_reminders_a_week_after_enrolment() -> None:
    _, state = enrolled(band=(50, 54), channels=("sms", "app"))
    reminders = state.scheduled()
    assert {m.programme for m in reminders} == {"screening.colorectal", "screening.breast"}
    assert all(m.due_at == NOW + timedelta(days=7) and m.channel == "sms" for m in reminders)


def test_hpv_vaccination_reminds_both_doses_six_months_apart() -> None:
    _, state = enrolled(band=(11, 14))
    doses = sorted(state.scheduled(), key=lambda m: m.due_at)
    assert [m.step for m in doses] == ["step_1", "step_2"]
    assert doses[1].due_at - doses[0].due_at == timedelta(days=182)


def test_enrolling_again_schedules_nothing_new() -> None:
    person, state = enrolled(band=(50, 54))
    again = enrol(
        enrolment(person, band=(50, 54)), state=state, now=NOW + timedelta(days=3), delays=DELAYS
    )
    assert again.facts == []
    assert again.state.messages == state.messages


def test_no_allowed_channel_we_send_on_schedules_nothing_and_says_so() -> None:
    _, state = enrolled(band=(11, 14), channels=("fax",))
    outcome_state = state
    assert outcome_state.scheduled() == []
    assert outcome_state.enrolled


def test_a_sent_screening_reminder_plans_the_next_round_two_years_later() -> None:
    person, state = enrolled(band=(50, 54))
    colorectal = next(m for m in state.scheduled() if m.programme == "screening.colorectal")
    outcome = send_message(
        send(person, colorectal.message_id), campaign=None, state=state, now=colorectal.due_at
    )
    assert outcome.outcome == "sent"
    [next_round] = [m for m in outcome.state.scheduled() if m.programme == "screening.colorectal"]
    assert next_round.due_at == colorectal.due_at + timedelta(days=730)
    delivered = record_receipt(
        receipt(person, colorectal.message_id, DeliveryStatus.DELIVERY_STATUS_DELIVERED),
        state=outcome.state,
        now=colorectal.due_at,
    )
    assert delivered.state.messages[colorectal.message_id].status == "delivered"


def test_the_state_survives_the_table_round_trip() -> None:
    _, state = enrolled(band=(50, 54))
    assert PersonState.from_json(state.to_json()) == state


def test_nothing_is_planned_for_someone_who_refused_everything() -> None:
    from emeuse.runtime.pseudonym import random_pseudonym
    from services.prevention.handlers import opt_out, start_programme
    from tests.unit.prevention.people import opt_out as refusal
    from tests.unit.prevention.people import pregnancy

    person = random_pseudonym()
    refused = opt_out(refusal(person), state=PersonState(), now=NOW).state
    enrolled_ = enrol(enrolment(person, band=(50, 54)), state=refused, now=NOW, delays=DELAYS)
    assert enrolled_.facts == [] and enrolled_.state.scheduled() == []
    started = start_programme(
        pregnancy(person, (NOW + timedelta(days=200)).date()), state=enrolled_.state, now=NOW
    )
    assert started.facts == [] and started.state.scheduled() == []
