"""A record whose header key is not UTF-8 (kafka-python cannot decode it) is shown by its
place by `emeuse tail` (a partner's too, logged in with its settings file) and the
platform's plain readers, which then go on past it."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from emeuse.partners import feed_topic
from emeuse.runtime.unreadable import Unreadable, poll
from tests.chaos.kafka_io import records_after
from tests.chaos.poison import send_poison_record
from tests.integration.harness import emeuse
from tests.integration.test_partner_security import (
    READING,
    add_partner,
    new_partner_id,
    remove_partner,
)


def new_feed(bootstrap: str, partitions: int) -> str:
    """A partner's feed of its own (tail reads partner topics; no service reads this one)."""
    topic = feed_topic(f"unreadable-{uuid.uuid4().hex[:8]}")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()
    return topic


def send(bootstrap: str, topic: str, partition: int, *values: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for value in values:
            producer.send(topic, key=b"k", value=value, partition=partition).get(timeout=10)
    finally:
        producer.close()


def poison(bootstrap: str, topic: str, partition: int) -> int:
    return send_poison_record(
        bootstrap, topic, partition, key=b"k", value=b"v", headers=[(b"\xff\xfe", b"x")]
    )


@pytest.fixture(scope="module")
def poisoned(bootstrap: str) -> tuple[str, int]:
    """Partition 0: good, the poison, good; partition 1: two good records."""
    topic = new_feed(bootstrap, 2)
    send(bootstrap, topic, 0, b"before")
    offset = poison(bootstrap, topic, 0)
    send(bootstrap, topic, 0, b"after")
    send(bootstrap, topic, 1, b"other-0", b"other-1")
    return topic, offset


def test_tail_names_the_unreadable_record_and_prints_the_good_one_after_it(bootstrap, poisoned):
    topic, offset = poisoned

    tailed = emeuse("tail", topic, "--from-beginning", "--timeout", "3", bootstrap=bootstrap)

    assert tailed.returncode == 0, tailed.stderr
    lines = [json.loads(line) for line in tailed.stdout.splitlines()]
    by_place = {(line["partition"], line["offset"]): line for line in lines}
    assert set(by_place) == {(0, offset - 1), (0, offset), (0, offset + 1), (1, 0), (1, 1)}
    bad = by_place[(0, offset)]
    assert bad["topic"] == topic
    assert "header key b'\\xff\\xfe' is not UTF-8" in bad["error"]
    assert bad["headers"] == {"base64://4=": "x"}
    assert "unreadable" not in by_place[(0, offset + 1)].get("error", "")


def test_a_plain_reader_gets_every_good_record_and_the_unreadable_one_by_its_place(
    bootstrap, poisoned
):
    topic, offset = poisoned
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    tps = [TopicPartition(topic, p) for p in (0, 1)]
    got: list[tuple[int, int, bytes | None]] = []
    unreadable: list[Unreadable] = []
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 20
        while len(got) + len(unreadable) < 5 and time.monotonic() < deadline:
            polled, bad = poll(consumer, bootstrap, timeout_ms=300)
            got += [(r.partition, r.offset, r.value) for rs in polled.values() for r in rs]
            unreadable += bad
    finally:
        consumer.close()

    assert sorted(got) == [
        (0, offset - 1, b"before"),
        (0, offset + 1, b"after"),
        (1, 0, b"other-0"),
        (1, 1, b"other-1"),
    ]
    assert [(u.topic, u.partition, u.offset) for u in unreadable] == [(topic, 0, offset)]


def test_the_chaos_checker_counts_an_unread_poison_record_as_an_input_never_processed(
    bootstrap, poisoned
):
    topic, offset = poisoned
    tp = TopicPartition(topic, 0)

    left = records_after(bootstrap, {tp: offset}, {tp: offset + 2})

    assert left == {tp: 2}


def test_a_partners_tail_reads_the_unreadable_record_raw_with_its_own_login(
    bootstrap: str, tmp_path: Path
):
    """The partner listener takes SASL logins only: the raw re-read that steps over the
    record must log in with the settings file, as the consumer does."""
    partner = add_partner(bootstrap, tmp_path, new_partner_id(), "--read", READING)
    try:
        topic = feed_topic(partner.partner_id)
        send(bootstrap, topic, 0, b"before")
        offset = poison(bootstrap, topic, 0)
        send(bootstrap, topic, 0, b"after")

        tailed = emeuse(
            "tail",
            "feed",
            "--config",
            str(partner.settings),
            "--from-beginning",
            "--timeout",
            "3",
            bootstrap="127.0.0.1:1",  # the settings file's listener is used, not this
        )

        assert tailed.returncode == 0, tailed.stderr
        lines = [json.loads(line) for line in tailed.stdout.splitlines()]
        by_place = {(line["partition"], line["offset"]): line for line in lines}
        assert set(by_place) == {(0, offset - 1), (0, offset), (0, offset + 1)}
        assert "header key b'\\xff\\xfe' is not UTF-8" in by_place[(0, offset)]["error"]
    finally:
        remove_partner(bootstrap, partner)
