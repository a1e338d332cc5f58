"""No record stops a partner's feed: one the Kafka client cannot read, or whose envelope or
value cannot be decoded, is set aside, counted and reported to the app's hook by its place
and reason; the partition goes on past it."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import CorruptRecordException
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.kernel.raw_records import RawRecord
from emeuse.partner import RetryPolicy, Unreadable
from emeuse.partner.dispatch import Dispatcher, Handler, Record
from emeuse.partner.loop import FeedLoop
from emeuse.partner.metrics import PartnerMetrics
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.runtime import envelope as env
from tests.unit.partner.fakes import FakeProducer, FakeRecord, PoisonedLog, feed_record, patient

FEED = "emeuse-partner.glucoflow.feed"
P0, P1 = TopicPartition(FEED, 0), TopicPartition(FEED, 1)
READING = "emeuse.chronic.v1.ReadingRecorded"
SECRET_VALUE = b"glucose 412 mg/dL"


def readings(tp: TopicPartition, count: int) -> list[FakeRecord]:
    return [
        feed_record(
            ReadingRecorded(reading_id=f"r{tp.partition}-{n}", patient_pseudonym=patient()),
            partition=tp.partition,
            offset=n,
        )
        for n in range(count)
    ]


def raw_poison(topic: str, partition: int, offset: int) -> RawRecord:
    """The poison as the raw reader gives it: a header key that is not UTF-8."""
    return RawRecord(topic, partition, offset, 0, b"k", SECRET_VALUE, ((b"\xff\xfe", b"x"),))


class Feed:
    def __init__(self, log: PoisonedLog, read_raw=None) -> None:
        self.log = log
        self.producer = FakeProducer()
        self.registry = CollectorRegistry()
        self.metrics = PartnerMetrics(self.registry)
        self.stop = asyncio.Event()
        self.handled: list[str] = []
        self.reported: list[Unreadable] = []
        self.read_raw = read_raw or self.raw
        self.raw_reads: list[tuple[str, int, int]] = []

    async def raw(self, topic: str, partition: int, offset: int) -> RawRecord | None:
        self.raw_reads.append((topic, partition, offset))
        return raw_poison(topic, partition, offset)

    async def on_reading(self, event, reading) -> None:
        self.handled.append(reading.reading_id)

    async def on_unreadable(self, record: Unreadable) -> None:
        self.reported.append(record)

    async def _pause(self, seconds: float) -> bool:
        return True

    def run(self) -> None:
        dispatcher = Dispatcher(
            partner_id="glucoflow",
            experiment_id="glucoflow",
            handlers={READING: Handler(ReadingRecorded, self.on_reading)},
            sender=self.producer,
            metrics=self.metrics,
            retry=RetryPolicy(retries=0),
            pause=self._pause,
            on_unreadable=self.on_unreadable,
        )
        loop = FeedLoop(
            self.log,
            dispatcher,
            self.metrics,
            partner_id="glucoflow",
            stop=self.stop,
            read_raw=self.read_raw,
        )

        async def until_drained() -> None:
            await loop.on_partitions_assigned(list(self.log.log))
            task = asyncio.create_task(loop.run())
            drained = asyncio.create_task(self.log.drained.wait())
            await asyncio.wait([task, drained], return_when=asyncio.FIRST_COMPLETED)
            self.stop.set()
            await task

        asyncio.run(until_drained())

    def unreadable_count(self) -> float:
        sample = "emeuse_partner_records_unreadable_total"
        return self.registry.get_sample_value(sample, {"partner": "glucoflow"}) or 0.0

    def letters(self) -> list[MessageDeadLettered]:
        return [MessageDeadLettered.FromString(sent.value or b"") for sent in self.producer.sent]


def test_a_record_with_a_header_key_not_utf8_is_set_aside_and_its_partition_goes_on():
    p0, p1 = readings(P0, 5), readings(P1, 2)
    feed = Feed(PoisonedLog({P0: p0, P1: p1}, poison={(P0, 2)}))

    with capture_logs() as logs:
        feed.run()

    good = [f"r0-{n}" for n in (0, 1, 3, 4)] + ["r1-0", "r1-1"]
    assert sorted(feed.handled) == sorted(good) and len(feed.handled) == len(good)
    [reported] = feed.reported
    assert (reported.topic, reported.partition, reported.offset) == (FEED, 0, 2)
    assert "header key b'\\xff\\xfe' is not UTF-8" in reported.reason
    assert feed.unreadable_count() == 1
    [letter] = feed.letters()
    assert letter.cause == DeadLetterCause.DEAD_LETTER_CAUSE_UNREADABLE
    assert (letter.source_partition, letter.source_offset) == (0, 2)
    assert [(h.key, h.value) for h in letter.original_raw_headers] == [(b"\xff\xfe", b"x")]
    assert feed.log.last_committed == {P0: 5, P1: 2}
    [logged] = [line for line in logs if line["event"] == "event.unreadable"]
    assert (logged["partition"], logged["offset"]) == (0, 2)
    assert all(SECRET_VALUE.decode() not in str(line) for line in logs)
    assert SECRET_VALUE.decode() not in str(reported)


def test_records_another_partition_had_fetched_when_the_client_failed_are_not_lost():
    # P0 is drained first, then P1's poison fails the fetch: P0's records never reached the
    # loop, and its consumer position had moved past them.
    p0, p1 = readings(P0, 3), readings(P1, 3)
    feed = Feed(PoisonedLog({P0: p0, P1: p1}, poison={(P1, 1)}))

    feed.run()

    assert sorted(feed.handled) == ["r0-0", "r0-1", "r0-2", "r1-0", "r1-2"]
    assert [(r.partition, r.offset) for r in feed.reported] == [(1, 1)]
    assert feed.log.last_committed == {P0: 3, P1: 3}


def test_a_corrupt_batch_that_cannot_be_read_raw_either_is_set_aside_by_its_place():
    async def broker_gone(topic: str, partition: int, offset: int) -> RawRecord | None:
        raise ConnectionError("no broker")

    log = PoisonedLog({P0: readings(P0, 3)}, poison={(P0, 1)}, error=CorruptRecordException())
    feed = Feed(log, read_raw=broker_gone)

    feed.run()

    assert feed.handled == ["r0-0", "r0-2"]
    [reported] = feed.reported
    assert reported.offset == 1
    assert "CorruptRecordException" in reported.reason
    assert "nor could it be read raw" in reported.reason
    [letter] = feed.letters()
    assert (letter.cause, letter.source_offset) == (DeadLetterCause.DEAD_LETTER_CAUSE_UNREADABLE, 1)
    assert feed.log.last_committed == {P0: 3}


def test_a_hook_that_fails_stops_nothing():
    feed = Feed(PoisonedLog({P0: readings(P0, 3)}, poison={(P0, 0)}))

    async def broken_hook(record: Unreadable) -> None:
        raise RuntimeError("partner bug")

    feed.on_unreadable = broken_hook  # type: ignore[method-assign]
    feed.run()

    assert feed.handled == ["r0-1", "r0-2"]
    assert feed.log.last_committed == {P0: 3}


def dispatch_reporting(record: FakeRecord) -> tuple[list[Unreadable], FakeProducer]:
    reported: list[Unreadable] = []
    producer = FakeProducer()

    async def on_unreadable(place: Unreadable) -> None:
        reported.append(place)

    async def never(event, reading) -> None:
        raise AssertionError("no handler sees an undecodable record")

    async def pause(seconds: float) -> bool:
        return True

    dispatcher = Dispatcher(
        partner_id="glucoflow",
        experiment_id="glucoflow",
        handlers={READING: Handler(ReadingRecorded, never)},
        sender=producer,
        metrics=PartnerMetrics(CollectorRegistry()),
        retry=RetryPolicy(retries=0),
        pause=pause,
        on_unreadable=on_unreadable,
    )
    asyncio.run(dispatcher.dispatch(Record(**vars(record))))
    return reported, producer


def test_an_undecodable_value_is_reported_to_the_hook_without_its_content():
    good = feed_record(ReadingRecorded(reading_id="r-1", patient_pseudonym=patient()), offset=7)
    garbage = FakeRecord(good.topic, 0, 7, good.key, b"\xff" + SECRET_VALUE, good.headers)

    reported, producer = dispatch_reporting(garbage)

    [place] = reported
    assert (place.topic, place.partition, place.offset) == (FEED, 0, 7)
    assert place.reason.startswith(f"value is not a {READING}")
    assert SECRET_VALUE.decode() not in place.reason
    assert len(producer.sent) == 1


def test_a_ce_header_value_not_utf8_is_reported_as_an_invalid_envelope():
    good = feed_record(ReadingRecorded(reading_id="r-1", patient_pseudonym=patient()))
    headers = tuple((n, b"\xff\xfe" if n == env.H_SOURCE else v) for n, v in good.headers)

    reported, _ = dispatch_reporting(FakeRecord(good.topic, 0, 0, good.key, good.value, headers))

    assert [place.reason for place in reported] == ["invalid envelope: a ce_ header is not UTF-8"]
