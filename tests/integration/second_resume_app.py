"""A faust worker whose flow control is resumed again while records wait in its agent's
queue, as faust does after a rebalance; to test runtime/faust_fixes.py.

Run by test_faust_fixes.py as `python -m tests.integration.second_resume_app worker`. It
publishes RECORDS records to its one-partition topic; its agent holds the first for 2 s,
so the others wait in the agent's queue (already fetched: the consumer's position is past
them), then resumes flow control again. The worker prints `seen <n>` for each record its
agent gets. With RESUME_FIX=0 the queued records are dropped; with RESUME_WATCHDOG=1 the
watchdog notices the position past the group's commit and reads them again.
"""

from __future__ import annotations

import asyncio
import os

import faust

from emeuse.runtime.faust_fixes import keep_queued_records_while_flowing
from emeuse.runtime.watchdog import add_watchdog
from tests.integration.worker_apps import BOOTSTRAP, worker_app

RECORDS = int(os.environ.get("RESUME_RECORDS", "20"))
TOPIC = os.environ["RESUME_TOPIC"]
if os.environ.get("RESUME_FIX", "1") == "1":
    keep_queued_records_while_flowing()
app = worker_app(TOPIC, value_serializer="raw")
topic = app.topic(TOPIC, partitions=1, value_serializer="raw")
state = {"handling": 0}
if os.environ.get("RESUME_WATCHDOG") == "1":
    add_watchdog(app, "resume-test", [BOOTSTRAP], lambda: state["handling"] > 0, group=TOPIC)


@app.agent(topic)
async def read(stream: faust.StreamT) -> None:
    async for value in stream:
        state["handling"] += 1
        print(f"seen {value.decode()}", flush=True)
        if value == b"0" and not state.get("resumed"):
            state["resumed"] = 1
            await asyncio.sleep(2.0)  # the others are fetched meanwhile, and wait queued
            print(f"resuming with {stream.channel.queue.qsize()} queued", flush=True)
            app.flow_control.resume()  # what faust's recovery does once more when ready
        state["handling"] -= 1


@app.task
async def publish() -> None:
    for n in range(RECORDS):
        await topic.send(value=str(n).encode())


if __name__ == "__main__":
    app.main()
