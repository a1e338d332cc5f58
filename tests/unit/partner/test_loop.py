"""The consume loop commits only what was handled, and stops cleanly."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.partner import RetryPolicy
from emeuse.partner.dispatch import Dispatcher, Handler
from emeuse.partner.loop import FeedLoop
from emeuse.partner.metrics import PartnerMetrics
from tests.unit.partner.fakes import FakeConsumer, FakeProducer, feed_record, patient

FEED = "emeuse-partner.glucoflow.feed"
P0, P1 = TopicPartition(FEED, 0), TopicPartition(FEED, 1)


def readings(tp: TopicPartition, *offsets: int):
    return [
        feed_record(
            ReadingRecorded(reading_id=f"r-{n}", patient_pseudonym=patient(), value=n),
            partition=tp.partition,
            offset=n,
        )
        for n in offsets
    ]


async def nothing_raw(topic: str, partition: int, offset: int) -> None:
    raise AssertionError("these feeds hold no unreadable record")


class Harness:
    def __init__(self, batches, handle, *, retries: int = 0) -> None:
        self.consumer = FakeConsumer(batches)
        self.producer = FakeProducer()
        self.registry = CollectorRegistry()
        self.metrics = PartnerMetrics(self.registry)
        self.stop = asyncio.Event()
        self.handle = handle
        self.retries = retries

    async def _pause(self, seconds: float) -> bool:
        return not self.stop.is_set()

    def loop(self) -> FeedLoop:
        dispatcher = Dispatcher(
            partner_id="glucoflow",
            experiment_id="glucoflow",
            handlers={"emeuse.chronic.v1.ReadingRecorded": Handler(ReadingRecorded, self.handle)},
            sender=self.producer,
            metrics=self.metrics,
            retry=RetryPolicy(retries=self.retries, initial_backoff_s=0),
            pause=self._pause,
        )
        return FeedLoop(
            self.consumer,
            dispatcher,
            self.metrics,
            partner_id="glucoflow",
            stop=self.stop,
            read_raw=nothing_raw,
        )

    async def run_until_drained(self, feed: FeedLoop, assigned=(P0, P1)) -> None:
        await feed.on_partitions_assigned(assigned)
        task = asyncio.create_task(feed.run())
        drained = asyncio.create_task(self.consumer.drained.wait())
        await asyncio.wait([task, drained], return_when=asyncio.FIRST_COMPLETED)
        self.stop.set()
        await task


def test_each_partition_is_committed_past_its_last_handled_record():
    handled = []

    async def on_reading(event, reading):
        handled.append(reading.reading_id)

    harness = Harness([{P0: readings(P0, 0, 1, 2), P1: readings(P1, 7)}], on_reading)
    asyncio.run(harness.run_until_drained(harness.loop()))
    assert handled == ["r-0", "r-1", "r-2", "r-7"]
    assert harness.consumer.last_committed == {P0: 3, P1: 8}


def test_dead_lettered_records_are_committed_too():
    async def broken(event, reading):
        raise RuntimeError

    harness = Harness([{P0: readings(P0, 0, 1)}], broken, retries=1)
    asyncio.run(harness.run_until_drained(harness.loop()))
    assert len(harness.producer.sent) == 2
    assert harness.consumer.last_committed == {P0: 2}


def test_a_stop_mid_batch_commits_what_was_handled_and_leaves_the_rest_for_later():
    harness: Harness

    async def stop_after_second(event, reading):
        if reading.reading_id == "r-1":
            harness.stop.set()

    harness = Harness([{P0: readings(P0, 0, 1, 2, 3)}], stop_after_second)
    asyncio.run(harness.run_until_drained(harness.loop()))
    assert harness.consumer.last_committed == {P0: 2}


def test_when_a_dead_letter_cannot_be_written_the_loop_fails_after_committing_the_records_before():
    async def broken_on_second(event, reading):
        if reading.reading_id == "r-1":
            raise RuntimeError

    harness = Harness([{P0: readings(P0, 0, 1, 2)}], broken_on_second)
    harness.producer.fail = True
    with pytest.raises(ConnectionError):
        asyncio.run(harness.run_until_drained(harness.loop()))
    assert harness.consumer.last_committed == {P0: 1}


def test_records_of_a_partition_revoked_mid_batch_are_left_to_its_new_owner():
    harness: Harness
    feed: FeedLoop
    handled = []

    async def revoke_during_first(event, reading):
        handled.append(reading.reading_id)
        if reading.reading_id == "r-0":
            # aiokafka's coordinator calls the listener concurrently; it waits for the lock.
            asyncio.get_running_loop().create_task(feed.on_partitions_revoked([P0]))

    harness = Harness([{P0: readings(P0, 0, 1, 2)}], revoke_during_first)
    feed = harness.loop()
    asyncio.run(harness.run_until_drained(feed))
    assert handled == ["r-0"]
    assert harness.consumer.commits == [{P0: 1}]


def test_the_lag_gauge_is_the_high_water_mark_minus_the_committed_offset():
    async def on_reading(event, reading):
        pass

    harness = Harness([{P0: readings(P0, 0, 1)}], on_reading)
    feed = harness.loop()

    async def scenario():
        await harness.run_until_drained(feed)
        harness.consumer.highwaters[P0] = 10
        feed.record_lag()

    asyncio.run(scenario())
    lag = harness.registry.get_sample_value(
        "emeuse_partner_consumer_lag", {"partner": "glucoflow", "topic": FEED, "partition": "0"}
    )
    assert lag == 8
