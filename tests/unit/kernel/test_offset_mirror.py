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
    kernel._group_stable = asyncio.Event()
    kernel._group_stable.set()  # assigned
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


def test_nothing_is_mirrored_while_the_group_rebalances_then_the_newest_at_once():
    """A commit sent mid-rebalance fails and makes aiokafka rejoin: the mirror waits for the
    assignment instead, so that no failed mirror starts another rebalance."""
    group = GroupOffsets()

    async def across_a_rebalance() -> None:
        kernel = mirroring_kernel(group)
        listener = engine._Listener(kernel)
        kernel.tasks = {}
        await listener.on_partitions_revoked(set())  # a rebalance begins
        kernel.progressed({TP: 5})
        kernel.progressed({TP: 9})
        await asyncio.sleep(0.3)
        assert group.commits == []

        async def assigned(_: object) -> None:
            pass

        kernel.on_assigned = assigned  # type: ignore[method-assign]
        await listener.on_partitions_assigned({TP})
        assert kernel._mirror is not None
        await asyncio.wait_for(kernel._mirror, 1)

    asyncio.run(across_a_rebalance())
    assert group.commits == [{TP: 9}]


def test_stopping_during_a_rebalance_mirrors_the_last_offsets_at_once():
    group = GroupOffsets()

    async def stop_mid_rebalance() -> None:
        kernel = mirroring_kernel(group)
        kernel._group_stable.clear()  # revoked, not yet assigned
        kernel.progressed({TP: 3})
        await asyncio.sleep(0.1)
        assert group.commits == []
        kernel._stopping = True
        kernel._stop_asked.set()
        assert kernel._mirror is not None
        await asyncio.wait_for(kernel._mirror, 1)

    asyncio.run(stop_mid_rebalance())
    assert group.commits == [{TP: 3}]
