"""Every instance's copy of the consents, read from the consent topic for the inbound check."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import KafkaConnectionError

from emeuse.partners.v1.partners_pb2 import ConsentChanged
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym
from services.gateway.consent_follower import FollowedConsents, record_change
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


class Consumer:
    """A consumer of the consent topic, as a fake: what failed and whether it was stopped."""

    def __init__(self, fails_to: str = "") -> None:
        self.fails_to, self.stopped = fails_to, False

    async def start(self) -> None:
        if self.fails_to == "start":
            raise KafkaConnectionError("broker unreachable")

    async def stop(self) -> None:
        self.stopped = True
        if self.fails_to == "stop":
            raise KafkaConnectionError("connection lost while closing")

    def assign(self, partitions: list) -> None:
        pass

    async def seek_to_beginning(self, *partitions: object) -> None:
        pass

    async def end_offsets(self, partitions: list) -> dict:
        return {}

    async def getmany(self, timeout_ms: int) -> dict:
        raise KafkaConnectionError("broker gone")  # a broker failure: follow ends


def following(*consumers: Consumer):
    made = iter(consumers)
    return FollowedConsents().follow("127.0.0.1:1", new_consumer=lambda _: next(made))


@pytest.mark.parametrize("fails", ["reading's start", "ends reader's start", "reading"])
def test_a_follow_that_fails_leaves_no_consumer_of_it_open(fails):
    reading = Consumer("start" if fails == "reading's start" else "")
    ends_reader = Consumer("start" if fails == "ends reader's start" else "")
    with pytest.raises(KafkaConnectionError):
        asyncio.run(following(reading, ends_reader))
    made = [reading] if fails == "reading's start" else [reading, ends_reader]
    assert all(consumer.stopped for consumer in made)


def test_a_consumer_whose_stop_fails_does_not_leave_the_other_open():
    reading, ends_reader = Consumer(), Consumer("stop")
    with pytest.raises(KafkaConnectionError):
        asyncio.run(following(reading, ends_reader))
    assert reading.stopped and ends_reader.stopped
