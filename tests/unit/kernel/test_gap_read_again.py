"""A task is handed its partition's records in order from its next record. When the
consumer hands over records from further on (its position ran ahead of the task's, as in a
chaos round where a partition opened across two rebalances), the partition is read again
from the task's next record, once: a gap still there is the topic's own."""

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from emeuse.kernel.engine import GAP_TOLERATED, Kernel

TP = TopicPartition("emeuse.home.sensor-event-reported.v1", 4)


@dataclass
class Record:
    offset: int
    topic: str = TP.topic
    partition: int = TP.partition


@dataclass
class Task:
    fetched: dict[TopicPartition, int]
    refetched: dict[TopicPartition, int] = field(default_factory=dict)
    queue: deque[Any] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: bool = False
    suspended: bool = False
    partition: int = TP.partition

    def enqueue(self, records: list[Record]) -> None:
        self.queue.extend(records)
        self.fetched[TP] = records[-1].offset + 1


class Consumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def kernel_with(task: Task) -> tuple[Kernel, Consumer]:
    kernel = object.__new__(Kernel)  # only the hand-over part of the kernel
    consumer = Consumer()
    kernel._consumer = consumer  # type: ignore[assignment]
    kernel.tasks = {TP.partition: task}  # type: ignore[dict-item]
    kernel._full = set()
    task.ready.set()
    return kernel, consumer


def test_records_from_beyond_the_next_one_are_read_again_from_it():
    task = Task(fetched={TP: 11630})
    kernel, consumer = kernel_with(task)
    kernel._hand_over(TP, [Record(o) for o in range(11950, 11958)])
    assert list(task.queue) == []
    assert consumer.seeks == [(TP, 11630)]
    kernel._hand_over(TP, [Record(o) for o in range(11630, 11640)])
    assert [r.offset for r in task.queue] == list(range(11630, 11640))


def test_a_gap_found_again_is_the_topics_own_and_is_passed():
    task = Task(fetched={TP: 100})
    kernel, consumer = kernel_with(task)
    kernel._hand_over(TP, [Record(600)])  # 500 records of an aborted transaction
    kernel._hand_over(TP, [Record(600), Record(601)])
    assert consumer.seeks == [(TP, 100)]
    assert [r.offset for r in task.queue] == [600, 601]


def test_transaction_markers_between_records_are_no_gap():
    task = Task(fetched={TP: 100})
    kernel, consumer = kernel_with(task)
    kernel._hand_over(TP, [Record(100 + GAP_TOLERATED)])
    assert consumer.seeks == []
    assert [r.offset for r in task.queue] == [100 + GAP_TOLERATED]
