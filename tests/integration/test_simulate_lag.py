"""The live view's lag against a real broker's offsets: a partition written in
transactions ends in a commit marker no consumer is handed nor commits past, yet the
view shows a group that consumed every record at 0."""

from __future__ import annotations

import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from emeuse.simulate.lag import Lag, PlatformLag


def new_topic(bootstrap: str) -> TopicPartition:
    topic = f"emeuse-test-lag-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    return TopicPartition(topic, 0)


def write(producer: KafkaProducer, tp: TopicPartition, records: int, *, commit: bool) -> int:
    """One transaction of `records` records; the offset of its last."""
    producer.begin_transaction()
    sent = [producer.send(tp.topic, b"r", partition=tp.partition) for _ in range(records)]
    offsets = [future.get(timeout=15).offset for future in sent]
    if commit:
        producer.commit_transaction()
    else:
        producer.abort_transaction()
    return offsets[-1]


def consumed_up_to(bootstrap: str, group: str, tp: TopicPartition, last: int) -> None:
    """The group commits as the kernel does: the offset after the last record it handled."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        consumer.commit({tp: OffsetAndMetadata(last + 1, "", -1)})
    finally:
        consumer.close()


def end_offset(bootstrap: str, tp: TopicPartition) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    try:
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()


def measured(bootstrap: str, group: str) -> Lag:
    lag = PlatformLag(bootstrap, every_s=0.5, groups=[group])
    lag.start()
    try:
        deadline = time.monotonic() + 30
        while lag.latest is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        lag.stop()
    assert lag.latest is not None, lag.error
    return lag.latest


def test_a_group_that_consumed_every_committed_record_shows_no_lag(bootstrap):
    tp = new_topic(bootstrap)
    group = f"emeuse-test-lag-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{tp.topic}-tx")
    try:
        producer.init_transactions()
        write(producer, tp, 3, commit=True)
        last = write(producer, tp, 2, commit=True)
        consumed_up_to(bootstrap, group, tp, last)
        # The marker after the last record: one offset short of the end, no record left.
        assert end_offset(bootstrap, tp) == last + 2

        assert measured(bootstrap, group).per_group == {group: 0}

        # An aborted transaction's records are never handed to a consumer: not lag either.
        write(producer, tp, 2, commit=False)
        write(producer, tp, 1, commit=True)

        assert measured(bootstrap, group).per_group == {group: 1}
    finally:
        producer.close()
