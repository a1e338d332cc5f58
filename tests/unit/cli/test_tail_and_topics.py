"""`emeuse tail` and `emeuse topics` as an operator reads them, without a broker."""

import json

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from emeuse.cli.main import build_parser, cmd_tail, main
from emeuse.registry import READING_RECORDED, TOPICS

TOPIC = READING_RECORDED.name


def record(partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        leader_epoch=None,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"p-1",
        value=b"",
        headers=[],
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=0,
        serialized_header_size=-1,
    )


class TwoPartitionConsumer:
    """Each poll answers with records from two partitions at once, as a broker does."""

    def __init__(self) -> None:
        self.offset = 0
        self.closed = False

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1}

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        pass

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        batch = {
            TopicPartition(TOPIC, p): [record(p, self.offset + i) for i in range(3)] for p in (0, 1)
        }
        self.offset += 3
        return batch

    def close(self) -> None:
        self.closed = True


def test_tail_max_prints_exactly_n_events_when_a_poll_spans_several_partitions(capsys):
    consumer = TwoPartitionConsumer()
    args = build_parser().parse_args(["tail", TOPIC, "--from-beginning", "--max", "4"])

    assert cmd_tail(args, connect=lambda bootstrap: consumer) == 0

    lines = capsys.readouterr().out.splitlines()
    assert [(json.loads(line)["partition"], json.loads(line)["offset"]) for line in lines] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
    ]
    assert consumer.closed


def test_topics_shows_forever_for_topics_kept_forever(capsys):
    assert main(["topics"]) == 0

    out = capsys.readouterr().out
    assert "None" not in out
    kept_forever = [
        spec.name for spec in TOPICS if spec.retention_days is None and not spec.compacted
    ]
    assert kept_forever, "the registry has topics kept forever"
    for line in out.splitlines():
        if line.split()[0] in kept_forever:
            assert line.split()[4] == "forever", line
