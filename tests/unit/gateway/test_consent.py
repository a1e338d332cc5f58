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
