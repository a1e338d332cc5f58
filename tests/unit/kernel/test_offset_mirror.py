"""The group's offsets are a mirror of those the kernel commits in its changelog: paced, so
that a busy instance does not send an OffsetCommit after every transaction, and flushed at
once when the instance stops."""

import asyncio

import pytest
from aiokafka import TopicPartition

from emeuse.kernel import engine
from emeuse.kernel.engine import Kernel

TP = TopicPartition("chronic.readings", 0)


class GroupOffsets:
    """What the consumer group received, in order."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


def mirroring_kernel(group: GroupOffsets) -> Kernel:
    kernel = object.__new__(Kernel)  # only the mirror's part of the kernel
    kernel.service = "chronic"
    kernel._consumer = group  # type: ignore[assignment]
    kernel._unmirrored = {}
    kernel._mirror = None
    kernel._stopping = False
    kernel._stop_asked = asyncio.Event()
    return kernel


def test_transactions_in_a_burst_are_mirrored_once_per_interval_then_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "MIRROR_EVERY_S", 0.3)
    group = GroupOffsets()

    async def burst() -> None:
        kernel = mirroring_kernel(group)
        for offset in range(1, 101):  # 100 transactions within ~0.1 s
            kernel.progressed({TP: offset})
            await asyncio.sleep(0.001)
        assert group.commits == [{TP: 1}]
        await asyncio.sleep(0.4)

    asyncio.run(burst())
    assert group.commits == [{TP: 1}, {TP: 100}]


def test_stopping_mirrors_the_last_offsets_without_waiting_for_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "MIRROR_EVERY_S", 60)
    group = GroupOffsets()

    async def stop_soon_after() -> None:
        kernel = mirroring_kernel(group)
        kernel.progressed({TP: 1})
        await asyncio.sleep(0.01)
        kernel.progressed({TP: 7})
        kernel._stopping = True
        kernel._stop_asked.set()
        assert kernel._mirror is not None
        await asyncio.wait_for(kernel._mirror, 1)

    asyncio.run(stop_soon_after())
    assert group.commits == [{TP: 1}, {TP: 7}]
