"""The live view's lag counts records, not offsets: a transaction's commit marker takes an
offset that no consumer is handed nor commits past, so a group at rest shows 0."""

from __future__ import annotations

from kafka import TopicPartition

from emeuse.simulate.lag import READ_AT_MOST, group_lag, read_tails, tails_to_read

ALERTS, READINGS = TopicPartition("alerts", 0), TopicPartition("readings", 0)
RECORD, MARKER = "record", "marker"


class TransactionalLog:
    """A read_committed consumer of partitions written in transactions: each poll hands
    the records from the position on and steps the position over the markers, as
    kafka-python does."""

    def __init__(self, logs: dict[TopicPartition, list[str]], per_poll: int = 2) -> None:
        self.logs, self.per_poll = logs, per_poll
        self.positions: dict[TopicPartition, int] = {}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = dict.fromkeys(partitions, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[_Record]]:
        handed = {}
        for tp, at in self.positions.items():
            entries = list(enumerate(self.logs[tp]))[at : at + self.per_poll]
            handed[tp] = [_Record(offset) for offset, kind in entries if kind == RECORD]
            self.positions[tp] = at + len(entries)
        return handed


class _Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def transactions(*sizes: int) -> list[str]:
    """A partition's log: each transaction's records, then its commit marker."""
    return [entry for size in sizes for entry in [RECORD] * size + [MARKER]]


def measured(
    committed: dict[str, dict[TopicPartition, int]],
    logs: dict[TopicPartition, list[str]],
    within_s: float = 1.0,
) -> dict[str, int]:
    ends = {tp: len(log) for tp, log in logs.items()}
    consumer = TransactionalLog(logs)
    tails = read_tails(consumer, tails_to_read(committed, ends), ends, within_s)  # type: ignore[arg-type]
    return group_lag(committed, ends, tails).per_group


def test_a_group_that_consumed_every_transaction_is_at_zero_though_markers_follow():
    # Two transactions of 3 and 2 records: offsets 0-2, marker 3, offsets 4-5, marker 6.
    # The consumer committed 6, after its last record: only the marker is left.
    logs = {ALERTS: transactions(3, 2)}
    assert len(logs[ALERTS]) - 6 == 1

    assert measured({"emeuse-access": {ALERTS: 6}}, logs) == {"emeuse-access": 0}


def test_a_group_behind_counts_the_records_left_not_the_markers_between():
    logs = {ALERTS: transactions(3, 2, 4), READINGS: transactions(1)}
    # evaluation read the first transaction (committed 3): records 4, 5 and 7-10 are left,
    # among offsets 3-11 that hold three markers. access is one transaction further.
    lag = measured(
        {"emeuse-evaluation": {ALERTS: 3, READINGS: 1}, "emeuse-access": {ALERTS: 6}}, logs
    )

    assert lag == {"emeuse-evaluation": 6, "emeuse-access": 4}


def test_a_group_further_behind_than_is_read_counts_every_offset_between():
    end = READ_AT_MOST + 10
    ends = {READINGS: end}
    committed = {"emeuse-chronic": {READINGS: 5}, "emeuse-home": {READINGS: end}}

    assert tails_to_read(committed, ends) == {}
    assert group_lag(committed, ends).per_group == {"emeuse-chronic": end - 5, "emeuse-home": 0}


def test_a_tail_not_read_in_time_counts_every_offset_between():
    logs = {ALERTS: transactions(3, 2)}

    assert measured({"emeuse-access": {ALERTS: 0}}, logs, within_s=0) == {"emeuse-access": 7}
