"""The fault suite's short rounds (tests/chaos) inside make test: three instances of chronic,
then of home, under one fault of each kind, then every output read back read_committed. The
broker's kill -9 is left to `make chaos`: this broker is the whole session's. So is access's
round, to keep make test short (each round is 2-3 minutes, most of it the faults' own time)."""

from __future__ import annotations

import pytest
from kafka import TopicPartition

from emeuse.registry import SENSOR_EVENT_REPORTED
from tests.chaos.kafka_io import Producer, records_after
from tests.chaos.poison import send_poison_record
from tests.chaos.report import table
from tests.chaos.round import run_round, short_round
from tests.chaos.scenarios import SCENARIOS

ROUNDS = ("chronic", "home")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("service", ROUNDS)
def test_a_short_round_of_faults_loses_nothing_and_does_nothing_twice(
    service, bootstrap, platform, tmp_path, poison_records
):
    # The session's instance reads the same input topics (another group): it would answer
    # the round's inputs too, and its outputs would count as duplicates. It sits it out.
    session_service = platform.services[service]
    session_service.stop()
    try:
        report = run_round(
            short_round(7, broker_faults=False), SCENARIOS[service], bootstrap, tmp_path
        )
    finally:
        session_service.start()
        session_service.wait_serving()
    print(table(report))
    # Random bytes on purpose: the identifier scan after this pass leaves them out.
    poison_records.update(
        (tp.topic, tp.partition, offset)
        for tp, offset in (f.poison for f in report.faults if f.poison)
    )

    kinds = sorted(fault.kind for fault in report.faults)
    assert kinds == sorted(
        [
            "kill-9",
            "sigterm",
            "sigstop",
            "leave-join",
            "poison-header",
            "poison-value",
            "poison-1mb",
        ]
    )
    for row in report.rows:
        assert (row.lost, row.dup_by_id, row.dup_by_meaning, row.unexpected) == (0, 0, 0, 0), row
        assert row.seen == row.expected, row
    poison = next(row for row in report.rows if row.what.startswith("poison"))
    assert poison.seen == poison.expected == 3
    assert report.unprocessed == {}
    assert report.produce_failures == 0
    assert all(fault.recovery_s is not None for fault in report.faults), table(report)
    assert report.ok


def test_inputs_left_unprocessed_are_counted_past_a_poison_record(bootstrap, poison_records):
    # The checker reads what a group left with kafka-python, which cannot read a header key
    # that is not UTF-8: such a record is counted as left, and the count goes on past it.
    topic = SENSOR_EVENT_REPORTED.name
    partition = 0
    producer = Producer(bootstrap)
    try:
        before = producer.producer.send(topic, b"left-1", partition=partition).get(30).offset
        poison = send_poison_record(
            bootstrap, topic, partition, key=b"left-2", value=b"", headers=[(b"\xff-key", b"x")]
        )
        after = producer.producer.send(topic, b"left-3", partition=partition).get(30).offset
    finally:
        producer.producer.close(timeout=10)
    poison_records.add((topic, partition, poison))
    tp = TopicPartition(topic, partition)
    assert before < poison < after
    assert records_after(bootstrap, {tp: before}, {tp: after + 1}) == {tp: 3}
    assert records_after(bootstrap, {tp: poison + 1}, {tp: after + 1}) == {tp: 1}
    assert records_after(bootstrap, {tp: after + 1}, {tp: after + 1}) == {}
