"""`emeuse topics create` against a broker that has just started: it asks again, saying so."""

import pytest

from emeuse.cli.errors import CliError
from emeuse.cli.kafka import create_topics
from emeuse.registry import READING_RECORDED
from emeuse.runtime.startup import Backoff
from emeuse.runtime.topics import TopicError, TopicsNotReady

NOT_READY = TopicsNotReady(
    "Kafka at 127.0.0.1:9092: InvalidReplicationFactorError: only 0 broker(s) are registered"
)


class BrokerReadyAfter:
    """Refuses `failures` times as a broker whose controller is not ready, then creates."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.asked = 0

    def __call__(self, bootstrap: str, plans: list, replication_factor: int) -> list:
        self.asked += 1
        if self.asked <= self.failures:
            raise NOT_READY
        return [(plan.name, "created") for plan in plans]


def run(ensure, total_s: float = 10.0) -> tuple[list, list[float], list[str]]:
    slept: list[float] = []
    said: list[str] = []
    created = create_topics(
        "127.0.0.1:9092",
        1,
        (READING_RECORDED,),
        backoff=Backoff(total_s, first_s=0.5, cap_s=4.0),
        ensure=ensure,
        sleep=slept.append,
        say=said.append,
    )
    return created, slept, said


def test_topics_are_created_once_the_just_started_broker_is_ready():
    created, slept, said = run(BrokerReadyAfter(failures=3))

    assert created == [(READING_RECORDED.name, "created")]
    assert slept == [0.5, 1.0, 2.0]
    assert len(said) == 3
    assert "only 0 broker(s) are registered" in said[0]
    assert "trying again in 0.5 s (attempt 1)" in said[0]


def test_a_broker_never_ready_fails_with_the_last_error_after_the_bounded_wait():
    broker = BrokerReadyAfter(failures=1000)

    with pytest.raises(CliError) as failed:
        run(broker, total_s=5.0)

    assert "only 0 broker(s) are registered" in str(failed.value)
    assert "gave up after 5 attempts in 5 s" in str(failed.value)
    assert broker.asked == 5


def test_a_topic_with_another_partition_count_fails_at_once():
    def mismatch(bootstrap: str, plans: list, replication_factor: int) -> list:
        raise TopicError("topic x has 3 partitions, 12 expected")

    with pytest.raises(CliError, match="3 partitions, 12 expected"):
        run(mismatch)
