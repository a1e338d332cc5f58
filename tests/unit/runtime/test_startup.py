"""A service starting before its topics: it waits, logs what is missing, gives up in time."""

import asyncio

import pytest
from structlog.testing import capture_logs

from emeuse.runtime.startup import Backoff, wait_for_topics
from emeuse.runtime.topics import TopicError, TopicsNotReady


def test_waits_double_up_to_the_cap_and_stop_at_the_total():
    waits = list(Backoff(total_s=60, first_s=0.5, cap_s=8).waits())

    assert waits == [0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8, 4.5]
    assert sum(waits) == 60


class Broker:
    """Topics that appear after a number of attempts; records the waits asked for."""

    def __init__(self, ready_after: int, error: TopicError | None = None) -> None:
        self.ready_after = ready_after
        self.error = error or TopicsNotReady("topics missing: emeuse.chronic.reading-recorded.v1")
        self.attempts = 0
        self.slept: list[float] = []

    async def attempt(self) -> None:
        self.attempts += 1
        if self.attempts <= self.ready_after:
            raise self.error

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_a_service_waits_for_missing_topics_and_logs_each_wait_with_what_is_missing():
    broker = Broker(ready_after=3)
    with capture_logs() as logs:
        asyncio.run(wait_for_topics(broker.attempt, Backoff(total_s=300), broker.sleep))

    assert broker.attempts == 4
    assert broker.slept == [0.5, 1, 2]
    waiting = [line for line in logs if line["event"] == "service.topics_waiting"]
    assert [line["retry_in_s"] for line in waiting] == [0.5, 1, 2]
    assert all("emeuse.chronic.reading-recorded.v1" in line["missing"] for line in waiting)
    assert logs[-1]["event"] == "service.topics_ready"


def test_a_service_gives_up_once_the_total_wait_is_spent_saying_what_is_missing():
    broker = Broker(ready_after=1000)

    with pytest.raises(TopicError, match=r"reading-recorded.*gave up after .* in 10 s"):
        asyncio.run(wait_for_topics(broker.attempt, Backoff(total_s=10), broker.sleep))

    assert sum(broker.slept) == 10


def test_a_wrong_partition_count_is_not_waited_for():
    broker = Broker(ready_after=1, error=TopicError("topic x has 3 partitions, 6 expected"))

    with pytest.raises(TopicError, match="3 partitions"):
        asyncio.run(wait_for_topics(broker.attempt, Backoff(total_s=300), broker.sleep))

    assert broker.slept == []
