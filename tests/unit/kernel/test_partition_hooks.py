"""A service's partition hooks are told when a partition is opened here (its whole
committed state to read) and when it is let go, once each and in that order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emeuse.kernel.declare import PartitionHook, Processor, Scan, TableSpec
from emeuse.kernel.engine import Kernel
from emeuse.kernel.store import PartitionStore
from emeuse.kernel.task import LetGo, PartitionTask
from emeuse.registry import TOPICS


class Told:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, Any]] = []

    def opened(self, partition: int, scan: Scan) -> None:
        self.events.append(("opened", partition, dict(scan("homes"))))

    def closed(self, partition: int) -> None:
        self.events.append(("closed", partition, None))


def kernel_with(*hooks: PartitionHook) -> Kernel:
    async def handle(event: Any, tx: Any) -> None:
        return None

    processor = Processor(
        service="kernel-test",
        inputs={TOPICS[0]: handle},
        tables=(TableSpec("homes", "A value per home."),),
        partition_hooks=hooks,
    )
    settings = SimpleNamespace(
        service="kernel-test", app_id="kernel-test", source="tests", experiment_id="exp"
    )
    return Kernel(processor, settings, instance_id="i-1", address="127.0.0.1:1")  # type: ignore[arg-type]


def task_holding(kernel: Kernel, partition: int, tmp_path: Path, homes: dict[str, str]) -> Any:
    """A task whose store holds `homes` committed, as a recovery leaves it."""
    task = PartitionTask(kernel, partition)
    task._store = PartitionStore(tmp_path / f"p{partition}")
    codec = kernel.codec("homes")
    task._store.apply([("homes", key, codec.encode(value)) for key, value in homes.items()])
    return task


def test_an_opened_partition_is_told_with_its_stored_values_then_its_close(tmp_path: Path):
    told = Told()
    kernel = kernel_with(PartitionHook("gauges", told.opened, told.closed))
    task = task_holding(kernel, 2, tmp_path, {"r-1": "a", "r-2": "b"})
    asyncio.run(kernel.partition_opened(task, task._scan))
    kernel.partition_closed(task)
    kernel.partition_closed(task)  # told once
    assert told.events == [("opened", 2, {"r-1": "a", "r-2": "b"}), ("closed", 2, None)]


def test_a_task_closing_late_does_not_undo_its_successor(tmp_path: Path):
    told = Told()
    kernel = kernel_with(PartitionHook("gauges", told.opened, told.closed))
    old = task_holding(kernel, 1, tmp_path / "old", {"r-1": "a"})
    new = task_holding(kernel, 1, tmp_path / "new", {"r-1": "a", "r-3": "c"})
    asyncio.run(kernel.partition_opened(old, old._scan))
    asyncio.run(kernel.partition_opened(new, new._scan))
    kernel.partition_closed(old)
    assert [e[0] for e in told.events] == ["opened", "opened"]


def test_a_hook_that_fails_is_logged_and_the_others_are_still_told(tmp_path: Path):
    told = Told()

    def broken(partition: int, scan: Scan) -> None:
        raise RuntimeError("bad state")

    kernel = kernel_with(
        PartitionHook("broken", broken, lambda p: None),
        PartitionHook("gauges", told.opened, told.closed),
    )
    task = task_holding(kernel, 0, tmp_path, {"r-1": "a"})
    asyncio.run(kernel.partition_opened(task, task._scan))
    assert told.events == [("opened", 0, {"r-1": "a"})]


def test_reading_the_state_of_a_partition_being_closed_stops(tmp_path: Path):
    kernel = kernel_with()
    task = task_holding(kernel, 0, tmp_path, {"r-1": "a", "r-2": "b"})
    task.stopped = True
    with pytest.raises(LetGo):
        list(task._scan("homes"))


def test_a_hook_declared_twice_is_refused():
    hook = PartitionHook("gauges", lambda p, scan: None, lambda p: None)
    with pytest.raises(ValueError, match="partition hook is declared twice"):
        kernel_with(hook, hook)
