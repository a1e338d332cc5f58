"""A kafka-python reader goes past a record it cannot decode, told where it was
(runtime/unreadable), without a broker: a consumer and a raw reader stand in."""

import pytest
from kafka import TopicPartition
from kafka.errors import CorruptRecordError

from emeuse.kernel.raw_records import RawRecord
from emeuse.runtime.unreadable import poll

TOPIC = "emeuse.chronic.reading-recorded.v1"
BAD_KEY = b"\xff\xfe"


def raw(partition: int, offset: int, header_key: bytes = b"ce_id") -> RawRecord:
    return RawRecord(TOPIC, partition, offset, 0, b"k", b"v", ((header_key, b"x"),))


class Consumer:
    """Two partitions; kafka-python stops at partition 1, offset 7, whose header key is not
    UTF-8: every poll raises until the consumer is moved past it."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.positions = {TopicPartition(TOPIC, 0): 3, TopicPartition(TOPIC, 1): 7}
        self.config = {"isolation_level": "read_committed"}

    def poll(self, timeout_ms: int) -> dict:
        if self.positions[TopicPartition(TOPIC, 1)] == 7:
            raise self.error
        return {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def paused(self) -> set[TopicPartition]:
        return set()

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 10)

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset


class Log:
    """What a raw read finds at each place; records which places were asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int, str]] = []

    async def __call__(self, servers, topic, partition, offset, *, isolation_level):
        self.asked.append((partition, offset, isolation_level))
        return raw(partition, offset, BAD_KEY if (partition, offset) == (1, 7) else b"ce_id")


@pytest.mark.parametrize(
    "error",
    [
        CorruptRecordError("Found invalid record structure: UnicodeDecodeError(...)"),
        UnicodeDecodeError("utf-8", BAD_KEY, 0, 1, "invalid start byte"),
    ],
)
def test_the_record_it_cannot_decode_is_named_by_its_place_and_passed(error):
    consumer, log = Consumer(error), Log()

    polled, unreadable = poll(consumer, "127.0.0.1:9092", read_raw=log)

    assert polled == {}
    assert [(u.topic, u.partition, u.offset) for u in unreadable] == [(TOPIC, 1, 7)]
    assert str(unreadable[0]) == f"{TOPIC}[1]@7: header key {BAD_KEY!r} is not UTF-8"
    assert consumer.positions == {TopicPartition(TOPIC, 0): 3, TopicPartition(TOPIC, 1): 8}
    assert sorted(log.asked) == [(0, 3, "read_committed"), (1, 7, "read_committed")]
    assert poll(consumer, "127.0.0.1:9092", read_raw=log) == ({}, [])


def test_a_failure_no_raw_read_explains_is_raised_not_hidden():
    consumer = Consumer(CorruptRecordError("something else"))

    async def all_readable(servers, topic, partition, offset, *, isolation_level):
        return raw(partition, offset) if offset < 10 else None

    with pytest.raises(CorruptRecordError, match="something else"):
        poll(consumer, "127.0.0.1:9092", read_raw=all_readable)
    assert consumer.positions[TopicPartition(TOPIC, 1)] == 7
