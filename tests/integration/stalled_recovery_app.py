"""A faust worker whose first table recovery stops reading on purpose, to test the watchdog.

Run by test_watchdog.py as `python -m tests.integration.stalled_recovery_app worker`. The
test fills the table's changelog first. The first recovery is sent to the changelog's end
instead of its start: it has records left and reads none of them, as faust-streaming does by
itself now and then when an instance joins or leaves. The worker prints `recovered <n> keys`
once its table is read back, which only a new recovery (the watchdog's rebalance) can do.
"""

from __future__ import annotations

import os
from collections.abc import Set
from typing import Any

import faust
from faust.tables.recovery import Recovery
from faust.types import TP

from emeuse.runtime.watchdog import add_watchdog
from tests.integration.worker_apps import BOOTSTRAP, worker_app

APP_ID = os.environ["STALL_APP_ID"]
app = worker_app(APP_ID, topic_partitions=1)
topic = app.topic(f"{APP_ID}-input", partitions=1, value_serializer="raw")
counts = app.Table("counts", default=int, partitions=1)
add_watchdog(app, "stall-test", [BOOTSTRAP], busy=lambda: False)
state = {"stalled": False}
seek_offsets = Recovery._seek_offsets


async def seek_past_the_end_once(
    self: Recovery, consumer: Any, tps: Set[TP], offsets: Any, title: str
) -> None:
    if title == "active" and tps and not state["stalled"]:
        state["stalled"] = True
        ends = await consumer.highwaters(*tps)
        await consumer.seek_wait(dict(ends))
        print("recovery sent to the changelog's end", flush=True)
        return
    await seek_offsets(self, consumer, tps, offsets, title)


Recovery._seek_offsets = seek_past_the_end_once  # type: ignore[method-assign]


@app.agent(topic)
async def count(stream: faust.StreamT) -> None:
    async for key in stream:
        counts[key] += 1


@app.task
async def report() -> None:
    # App tasks start once the first recovery is over.
    print(f"recovered {len(list(counts.keys()))} keys", flush=True)


if __name__ == "__main__":
    app.main()
