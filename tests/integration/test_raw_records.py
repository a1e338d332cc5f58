"""A record whose header key is not UTF-8 is read back whole by kernel/raw_records, while
aiokafka's consumer raises on it: the behaviour the kernel works around."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from emeuse.kernel.raw_records import read_raw_record
from tests.chaos.poison import send_poison_record

POISON_HEADERS = [(b"\xff\xfe", b"\x00\x01"), (b"ce_id", b"poison-1")]


@dataclass(frozen=True)
class PoisonedTopic:
    bootstrap: str
    topic: str
    poison_offset: int
    end_offset: int


def new_topic(bootstrap: str) -> str:
    topic = f"emeuse-test-raw-records-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    return topic


def send(bootstrap: str, topic: str, *keys: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for key in keys:
            producer.send(topic, key=key, value=b"fine", partition=0).get(timeout=10)
    finally:
        producer.close()


@pytest.fixture(scope="module")
def poisoned(bootstrap: str) -> PoisonedTopic:
    """Two good records, the poison, one more good record, in one partition."""
    topic = new_topic(bootstrap)
    send(bootstrap, topic, b"good-0", b"good-1")
    offset = send_poison_record(
        bootstrap, topic, 0, key=b"poison-key", value=b"\x08\x96\x01", headers=POISON_HEADERS
    )
    send(bootstrap, topic, b"good-3")
    return PoisonedTopic(bootstrap, topic, offset, offset + 2)


def test_the_poison_record_is_read_back_byte_for_byte(poisoned):
    record = asyncio.run(
        read_raw_record([poisoned.bootstrap], poisoned.topic, 0, poisoned.poison_offset)
    )

    assert record is not None
    assert (record.topic, record.partition) == (poisoned.topic, 0)
    assert record.offset == poisoned.poison_offset
    assert (record.key, record.value) == (b"poison-key", b"\x08\x96\x01")
    assert record.headers == tuple(POISON_HEADERS)
    assert record.error is None


def test_the_records_around_the_poison_are_read_at_their_offsets(poisoned):
    async def keys() -> list[bytes | None]:
        found = []
        for offset in (0, 1, 3):
            record = await read_raw_record([poisoned.bootstrap], poisoned.topic, 0, offset)
            assert record is not None and record.offset == offset
            found.append(record.key)
        return found

    assert asyncio.run(keys()) == [b"good-0", b"good-1", b"good-3"]


@pytest.mark.parametrize("past_the_end", [0, 1000])
def test_there_is_no_record_after_the_last(poisoned, past_the_end):
    offset = poisoned.end_offset + past_the_end

    assert asyncio.run(read_raw_record([poisoned.bootstrap], poisoned.topic, 0, offset)) is None


def test_aiokafka_raises_from_getmany_and_stays_before_the_poison(poisoned):
    """aiokafka 0.14.0: getmany raises UnicodeDecodeError (no partition, no offset in it);
    the good records fetched before the poison are not returned and the position does not
    move, so every later getmany raises again."""
    tp = TopicPartition(poisoned.topic, 0)

    async def consume() -> list[tuple[str, int]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=poisoned.bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, 0)
            outcomes = []
            for _ in range(2):
                try:
                    batches = await consumer.getmany(timeout_ms=5000)
                    outcomes.append((f"records {sum(map(len, batches.values()))}", -1))
                except UnicodeDecodeError:
                    outcomes.append(("UnicodeDecodeError", await consumer.position(tp)))
            return outcomes
        finally:
            await consumer.stop()

    assert asyncio.run(consume()) == [("UnicodeDecodeError", 0), ("UnicodeDecodeError", 0)]


def test_an_aborted_transaction_is_passed_over_when_reading_committed(bootstrap):
    topic = new_topic(bootstrap)

    async def abort_one() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, transactional_id=f"{topic}-tx", enable_idempotence=True
        )
        await producer.start()
        try:
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aborted", key=b"aborted", partition=0)
            await producer.abort_transaction()
        finally:
            await producer.stop()

    asyncio.run(abort_one())
    send(bootstrap, topic, b"committed")  # after the abort marker, at offset 2

    committed = asyncio.run(read_raw_record([bootstrap], topic, 0, 0))
    uncommitted = asyncio.run(
        read_raw_record([bootstrap], topic, 0, 0, isolation_level="read_uncommitted")
    )

    assert committed is not None and (committed.offset, committed.key) == (2, b"committed")
    assert uncommitted is not None and (uncommitted.offset, uncommitted.key) == (0, b"aborted")
