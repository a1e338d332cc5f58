"""Every instance's copy of the consents, read from the consent topic for the inbound check."""

from datetime import UTC, datetime, timedelta

from emeuse.partners.v1.partners_pb2 import ConsentChanged
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym
from services.gateway.consent_follower import record_change
from services.gateway.domain.consent import ConsentBook

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PATIENT = random_pseudonym()


def change(granted: bool, hours: float, covers_from: datetime | None = None) -> bytes:
    message = ConsentChanged(
        patient_pseudonym=PATIENT,
        partner_id="glucoflow",
        purpose="remote-monitoring",
        granted=granted,
        changed_at=timestamp(T0 + timedelta(hours=hours)),
    )
    if covers_from is not None:
        message.covers_from.CopyFrom(timestamp(covers_from))
    return message.SerializeToString()


def test_the_consent_topic_read_in_order_gives_the_books_the_kernel_keeps():
    books: dict[str, ConsentBook] = {}
    for value in (change(True, 1, covers_from=T0), change(False, 3), change(False, 3)):
        record_change(books, value)
    expected = ConsentBook()
    expected.record("glucoflow", "remote-monitoring", T0 + timedelta(hours=1), True, T0)
    expected.record("glucoflow", "remote-monitoring", T0 + timedelta(hours=3), False)
    assert books == {PATIENT: expected}  # the redelivered withdrawal counted once
    reason = books[PATIENT].refuses_inbound("glucoflow", ["remote-monitoring"], T0)
    assert reason == "no consent: the patient withdrew consent to partner 'glucoflow'"


def test_a_tombstone_or_unreadable_record_changes_no_consent():
    books: dict[str, ConsentBook] = {}
    record_change(books, None)
    record_change(books, b"\xff\xff not a consent")
    assert books == {}
