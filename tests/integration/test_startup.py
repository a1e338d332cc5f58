"""A service started before its topics exist waits for them, then runs once they appear."""

from __future__ import annotations

import asyncio
import uuid

from structlog.testing import capture_logs

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.kernel.declare import Processor
from emeuse.kernel.engine import Kernel
from emeuse.registry import TopicSpec
from emeuse.runtime.security import LOOPBACK_PLAINTEXT
from emeuse.runtime.settings import load_settings
from emeuse.runtime.startup import Backoff, wait_for_topics
from emeuse.runtime.topics import TopicPlan, ensure_topics


async def ignore(event, tx) -> None:
    pass


def test_a_service_started_before_its_topics_waits_then_takes_its_partitions(bootstrap, tmp_path):
    run = uuid.uuid4().hex[:8]
    readings = TopicSpec(
        name=f"emeuse.test.startup-{run}.v1",
        message=ReadingRecorded,
        key="patient_pseudonym",
        owner="chronic",
        description="a topic no one has created yet",
        partitions=2,
    )
    settings = load_settings(
        "chronic",
        {
            **LOOPBACK_PLAINTEXT,
            "EMEUSE_KAFKA_BOOTSTRAP": bootstrap,
            "EMEUSE_CHRONIC_APP_ID": f"emeuse-test-startup-{run}",
            "EMEUSE_DATA_DIR": str(tmp_path),
            "EMEUSE_TOPICS_WAIT_SECONDS": "60",
        },
    )
    kernel = Kernel(
        Processor(service="chronic", inputs={readings: ignore}),
        settings,
        instance_id=f"startup-{run}",
        address="127.0.0.1:1",
    )

    async def scenario() -> None:
        starting = asyncio.create_task(kernel.start())
        await asyncio.sleep(4)
        assert not starting.done(), "the service did not wait for its missing topic"
        plan = TopicPlan(readings.name, readings.partitions, readings.kafka_config())
        # A broker that has just started may not elect the leaders in time: retried too.
        await wait_for_topics(
            lambda: asyncio.to_thread(ensure_topics, bootstrap, [plan], 1), Backoff(total_s=60)
        )
        try:
            await asyncio.wait_for(starting, 60)
            await asyncio.wait_for(kernel.ready.wait(), 60)
        finally:
            await kernel.stop()

    with capture_logs() as logs:
        asyncio.run(scenario())

    waits = [line for line in logs if line["event"] == "service.topics_waiting"]
    assert waits and all(readings.name in line["missing"] for line in waits)
    assert any(line["event"] == "service.topics_ready" for line in logs)
    assert {tp.partition for tp in kernel.consumer.assignment()} <= {0, 1}
