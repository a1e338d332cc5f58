"""A timer that fired and changed nothing: its deadline is asked for again, so a step whose
moment passed (inactivity due at 21:59, fired after bedtime) moves to its next moment
instead of firing again every few seconds; one still past waits REFIRE_AFTER_MS."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from emeuse.kernel.declare import Timer
from emeuse.kernel.store import PartitionStore
from emeuse.kernel.task import REFIRE_AFTER_MS, PartitionTask


def task_with(due: Any, tmp_path: Path) -> PartitionTask:
    async def fire(key: str, tx: Any) -> None:
        return None

    kernel = SimpleNamespace(
        input_topics=[],
        service="kernel-test",
        timers={"steps": Timer("steps", ("homes",), due, fire)},
    )
    task = PartitionTask(kernel, 0)  # type: ignore[arg-type]
    task._store = PartitionStore(tmp_path / "store")
    return task


def test_a_timer_that_changed_nothing_gets_its_next_deadline(tmp_path: Path) -> None:
    tomorrow = datetime.now(UTC) + timedelta(hours=11)
    task = task_with(lambda key, lookup, now: tomorrow, tmp_path)
    fired_at = int(time.time() * 1000) - 60_000
    task._after_fire([("steps", "resident-1", fired_at)], {})
    deadline = task._deadlines[("steps", "resident-1")]
    assert deadline == math.ceil(tomorrow.timestamp() * 1000)
    assert dict(task._store.due_items("steps")) == {"resident-1": deadline}


def test_a_deadline_still_past_is_tried_again_later_not_at_once(tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    task = task_with(lambda key, lookup, now: past, tmp_path)
    before = int(time.time() * 1000)
    task._after_fire([("steps", "resident-1", int(past.timestamp() * 1000))], {})
    deadline = task._deadlines[("steps", "resident-1")]
    assert before + REFIRE_AFTER_MS <= deadline <= int(time.time() * 1000) + REFIRE_AFTER_MS
