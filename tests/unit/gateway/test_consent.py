"""Consent as it stood when an event happened, and as it stands now."""

from datetime import UTC, datetime, timedelta

from services.gateway.domain.consent import ConsentBook

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PARTNER, PURPOSES = "glucoflow", ["remote-monitoring"]


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_without_consent_nothing_is_shared():
    assert not ConsentBook().allows(PARTNER, PURPOSES, at(1))


def test_with_consent_events_from_its_time_are_shared_and_earlier_ones_are_not():
    book = ConsentBook()
    book.record(PARTNER, "remote-monitoring", at(1), True)
    assert book.allows(PARTNER, PURPOSES, at(2))
    assert not book.allows(PARTNER, PURPOSES, at(0.5))  # before the patient said yes


def test_a_withdrawal_stops_every_event_after_it_even_those_that_happened_before():
    book = ConsentBook()
    book.record(PARTNER, "remote-monitoring", at(1), True)
    book.record(PARTNER, "remote-monitoring", at(3), False)
    assert not book.allows(PARTNER, PURPOSES, at(4))
    # Happened while consent stood, handled after the withdrawal: not shared.
    assert not book.allows(PARTNER, PURPOSES, at(2))
    assert book.stands(PARTNER, "remote-monitoring", at(2))


def test_a_replay_after_consent_is_given_again_follows_consent_as_it_stood():
    book = ConsentBook()
    book.record(PARTNER, "remote-monitoring", at(1), True)
    book.record(PARTNER, "remote-monitoring", at(3), False)
    book.record(PARTNER, "remote-monitoring", at(5), True)
    assert book.allows(PARTNER, PURPOSES, at(2))
    assert not book.allows(PARTNER, PURPOSES, at(4))  # the gap stays a gap
    assert book.allows(PARTNER, PURPOSES, at(6))


def test_the_last_change_handled_stands_whatever_the_clocks_said():
    book = ConsentBook()
    # A grant stamped by a clock ahead, then the patient's withdrawal stamped earlier.
    assert book.record(PARTNER, "remote-monitoring", at(3), True)
    assert book.record(PARTNER, "remote-monitoring", at(1), False)
    assert not book.stands(PARTNER, "remote-monitoring")
    assert not book.allows(PARTNER, PURPOSES, at(4))
    # The same change delivered twice counts once.
    assert not book.record(PARTNER, "remote-monitoring", at(1), False)
    assert [c.granted for c in book.changes["glucoflow|remote-monitoring"]] == [True, False]
    assert ConsentBook.from_json(book.to_json()) == book


def test_consent_is_per_partner_and_purpose():
    book = ConsentBook()
    book.record(PARTNER, "research", at(1), True)
    assert not book.allows(PARTNER, ["remote-monitoring"], at(2))
    assert book.allows(PARTNER, ["remote-monitoring", "research"], at(2))
    assert not book.allows("falldetect", ["research"], at(2))


def test_a_consent_covering_from_an_earlier_date_lets_those_events_through():
    book = ConsentBook()
    # Granted at 5, covering the care episode that began at 2, as the patient agreed.
    book.record(PARTNER, "remote-monitoring", at(5), True, covers_from=at(2))
    assert book.allows(PARTNER, PURPOSES, at(3))  # before the grant, inside what it covers
    assert book.allows(PARTNER, PURPOSES, at(6))
    assert not book.allows(PARTNER, PURPOSES, at(1))  # before what it covers: never
    # Withdrawn: nothing it covered is shared any more.
    book.record(PARTNER, "remote-monitoring", at(7), False)
    assert not book.allows(PARTNER, PURPOSES, at(3))
    assert ConsentBook.from_json(book.to_json()) == book


def test_a_grant_covers_until_the_withdrawal_that_follows_it_not_beyond():
    book = ConsentBook()
    book.record(PARTNER, "remote-monitoring", at(1), True)
    book.record(PARTNER, "remote-monitoring", at(3), False)
    # Given again at 5, covering from 4: the gap 3-4 stays a gap, 4-5 is covered.
    book.record(PARTNER, "remote-monitoring", at(5), True, covers_from=at(4))
    assert book.allows(PARTNER, PURPOSES, at(2))
    assert not book.allows(PARTNER, PURPOSES, at(3.5))
    assert book.allows(PARTNER, PURPOSES, at(4.5))
    # A withdrawal says nothing of coverage: what it carries is ignored.
    book.record(PARTNER, "remote-monitoring", at(6), False, covers_from=at(0))
    assert book.changes["glucoflow|remote-monitoring"][-1].covers_from is None


def test_a_partner_may_send_a_patients_event_while_consent_stands_and_covers_it():
    book = ConsentBook()
    book.record(PARTNER, "remote-monitoring", at(1), True)
    # Granted an instant before the reading was taken: the reading is the partner's to send.
    assert book.refuses_inbound(PARTNER, PURPOSES, at(1) + timedelta(milliseconds=1)) is None
    assert book.refuses_inbound(PARTNER, PURPOSES, at(2)) is None


def test_a_partner_may_not_send_for_a_patient_who_never_consented_to_it():
    book = ConsentBook()
    book.record("falldetect", "remote-monitoring", at(1), True)  # another partner's consent
    reason = book.refuses_inbound(PARTNER, PURPOSES, at(2))
    assert reason == "no consent: the patient has not consented to partner 'glucoflow'"


def test_after_a_withdrawal_a_partner_may_not_send_even_what_it_measured_before():
    book = ConsentBook()
    book.record(PARTNER, "remote-monitoring", at(1), True)
    book.record(PARTNER, "remote-monitoring", at(3), False)
    for happened in (at(2), at(4)):
        reason = book.refuses_inbound(PARTNER, PURPOSES, happened)
        assert reason == "no consent: the patient withdrew consent to partner 'glucoflow'"


def test_an_event_from_before_the_grant_is_refused_unless_the_grant_covers_it():
    book = ConsentBook()
    book.record(PARTNER, "remote-monitoring", at(5), True)
    reason = book.refuses_inbound(PARTNER, PURPOSES, at(4))
    assert reason is not None
    assert "does not cover when the event happened (2026-11-02T13:00:00Z)" in reason
    # Given again covering the care episode from 2: that reading may come in.
    book.record(PARTNER, "remote-monitoring", at(6), True, covers_from=at(2))
    assert book.refuses_inbound(PARTNER, PURPOSES, at(4)) is None
    assert book.refuses_inbound(PARTNER, PURPOSES, at(1)) is not None


def test_a_consent_for_any_of_the_partners_purposes_lets_it_send():
    book = ConsentBook()
    book.record(PARTNER, "research", at(1), True)
    assert book.refuses_inbound(PARTNER, ["remote-monitoring", "research"], at(2)) is None
    assert book.refuses_inbound(PARTNER, ["remote-monitoring"], at(2)) is not None
