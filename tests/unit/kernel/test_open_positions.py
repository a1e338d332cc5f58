"""A partition task, once open, is handed its inputs from the offsets its last commit wrote,
even when the consumer fetched meanwhile. Until a task is ready the kernel drops what the
consumer hands it, and the consumer's position moves on all the same: in a chaos round an
input sought before the opening's last await was read on meanwhile, and the task was then
handed records from ~320 offsets beyond its next one."""

import asyncio
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from emeuse.kernel.store import INPUT_OFFSETS, PartitionStore, encode_offset
from emeuse.kernel.task import PartitionTask

SENSOR = "emeuse.home.sensor-event-reported.v1"
VISITS = "emeuse.home.visit-ended.v1"
PLANS = "emeuse.home.visit-planned.v1"
PARTITION = 1
FETCHED_EACH_TURN = 100


class Consumer:
    """Each await of the consumer gives the fetcher a turn: every input assigned, not
    paused and with a position is read on by FETCHED_EACH_TURN records (that the kernel
    drops, its task not ready)."""

    def __init__(self, inputs: list[TopicPartition]) -> None:
        self.inputs = inputs
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.inputs)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def _fetcher_turn(self) -> None:
        await asyncio.sleep(0)
        for tp in self.positions:
            if tp not in self.paused:
                self.positions[tp] += FETCHED_EACH_TURN

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        await self._fetcher_turn()
        return dict.fromkeys(tps, 0)

    async def committed(self, tp: TopicPartition) -> int | None:
        await self._fetcher_turn()
        return None  # the group never kept offsets: only the changelog did


class Kernel:
    service = "home"
    timers: dict[str, Any] = {}
    timers_of_table: dict[str, Any] = {}

    def __init__(self, path: Path) -> None:
        self.input_topics = [PLANS, SENSOR, VISITS]
        self.path = path
        self.progress: list[dict[TopicPartition, int]] = []
        self._consumer: Consumer | None = None

    @property
    def consumer(self) -> Consumer:
        assert self._consumer is not None
        return self._consumer

    def owns(self, tp: TopicPartition) -> bool:
        return tp in self.consumer.assignment()

    def store_path(self, partition: int) -> Path:
        return self.path / f"p{partition}"

    def progressed(self, offsets: dict[TopicPartition, int]) -> None:
        self.progress.append(dict(offsets))

    async def partition_opened(self, task: PartitionTask, scan: Any) -> None:
        await asyncio.sleep(0)


async def open_task(tmp_path: Path, stored: dict[str, int]) -> tuple[PartitionTask, Consumer]:
    kernel = Kernel(tmp_path)
    task = PartitionTask(kernel, PARTITION)  # type: ignore[arg-type]
    consumer = kernel._consumer = Consumer(task.inputs)
    store = PartitionStore(kernel.store_path(PARTITION))
    store.apply([(INPUT_OFFSETS, topic, encode_offset(o)) for topic, o in stored.items()])
    store.close()

    async def no_producer() -> None:
        return None

    async def nothing_to_recover() -> None:
        return None

    task._new_producer = no_producer  # type: ignore[method-assign]
    task._recover = nothing_to_recover  # type: ignore[method-assign]
    # The assignment just changed: every input unpaused, at the group's offsets (none).
    for tp in task.inputs:
        consumer.positions[tp] = 0
    await task.open()
    return task, consumer


async def close(task: PartitionTask) -> None:
    task.stopped = True
    if task._runner is not None:
        task._runner.cancel()
    if task._store is not None:
        task._store.close()


def test_each_input_is_read_from_its_last_commit_though_the_consumer_fetched_meanwhile(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        task, consumer = await open_task(tmp_path, {SENSOR: 2944})
        try:
            assert task.ready.is_set()
            expected = {tp: (2944 if tp.topic == SENSOR else 0) for tp in task.inputs}
            assert task.fetched == expected
            # What the consumer reads next is what the task expects next: no record between
            # its last commit and the consumer's position was passed unhandled.
            assert consumer.positions == expected
            assert task.kernel.progress == [expected]  # type: ignore[attr-defined]
        finally:
            await close(task)

    asyncio.run(scenario())


def test_a_task_let_go_while_opening_neither_seeks_nor_becomes_ready(tmp_path: Path) -> None:
    async def scenario() -> None:
        kernel = Kernel(tmp_path)
        task = PartitionTask(kernel, PARTITION)  # type: ignore[arg-type]
        consumer = kernel._consumer = Consumer(task.inputs)

        async def no_producer() -> None:
            return None

        async def let_go_while_recovering() -> None:
            task.stopped = True  # closed by a rebalance meanwhile

        task._new_producer = no_producer  # type: ignore[method-assign]
        task._recover = let_go_while_recovering  # type: ignore[method-assign]
        await task.open()
        try:
            assert not task.ready.is_set()
            assert consumer.positions == {}
        finally:
            await close(task)

    asyncio.run(scenario())
