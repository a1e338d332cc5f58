"""A faust worker whose input partition 0 is paused on purpose, to test the watchdog.

Run by test_watchdog.py as `python -m tests.integration.stalled_partition_app worker`:
it pauses partition 0 of STALL_TOPIC (what faust-streaming #629 leaves behind), publishes
one record there and prints `seen <value>` when its agent gets it. With
STALL_IGNORE_RESUME=1 a resume of that partition alone is ignored, so only the watchdog's
second remedy (a group rebalance) can get the record read.
"""

from __future__ import annotations

import os

import faust
from faust.types import TP

from emeuse.runtime.watchdog import add_watchdog
from tests.integration.worker_apps import BOOTSTRAP, worker_app

TOPIC = os.environ["STALL_TOPIC"]
STUCK = TP(TOPIC, 0)
app = worker_app(TOPIC, value_serializer="raw")
topic = app.topic(TOPIC, partitions=2, value_serializer="raw")
state = {"ticks": 0, "handling": 0}
add_watchdog(app, "stall-test", [BOOTSTRAP], busy=lambda: state["handling"] > 0)


@app.agent(topic)
async def read(stream: faust.StreamT) -> None:
    async for event in stream.events():
        state["handling"] += 1
        print(f"seen {event.value.decode()} partition={event.message.partition}", flush=True)
        state["handling"] -= 1


@app.timer(1.0)
async def stall_partition_zero() -> None:
    state["ticks"] += 1
    if state["ticks"] != 3:
        return
    consumer = app.consumer
    consumer.pause_partitions({STUCK})
    if os.environ.get("STALL_IGNORE_RESUME") == "1":
        resume = consumer.resume_partitions

        def ignoring_a_resume_of_the_stuck_partition_alone(tps):  # type: ignore[no-untyped-def]
            if set(tps) != {STUCK}:
                resume(tps)

        consumer.resume_partitions = ignoring_a_resume_of_the_stuck_partition_alone  # type: ignore[method-assign]
    await topic.send(value=b"waiting", partition=0)
    print("paused partition 0 and published", flush=True)


if __name__ == "__main__":
    app.main()
