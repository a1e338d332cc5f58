"""A batch's transaction: reads its own writes, rolls a failed handler back."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from emeuse.kernel.outputs import OUTPUT_MAX_BYTES, Origin, OutputTooLargeError, OutRecord, SetAside
from emeuse.kernel.tx import Tx
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import dead_letter_topic

COMMITTED = {("states", "psn-a"): {"v": 1}}


def new_tx(partition_of: Any = lambda table, key: 0) -> Tx:
    return Tx(
        0,
        Origin("chronic", "emeuse/chronic", "emeuse-platform"),
        dead_letter_topic("chronic"),
        lambda table, key: COMMITTED.get((table, key)),
        partition_of,
    )


def test_a_read_sees_this_batchs_writes_before_the_committed_value() -> None:
    tx = new_tx()
    assert tx.get("states", "psn-a") == {"v": 1}
    tx.put("states", "psn-a", {"v": 2})
    assert tx.get("states", "psn-a") == {"v": 2}
    tx.delete("states", "psn-a")
    assert tx.get("states", "psn-a") is None


def test_a_failed_handler_is_rolled_back_to_where_it_started() -> None:
    tx = new_tx()
    tx.put("states", "psn-a", {"v": 2})
    mark = tx.savepoint()
    tx.put("states", "psn-a", {"v": 3})
    tx.put("states", "psn-b", {"v": 1})
    tx.dead_letter(SetAside("t", 0, 1, b"k", b"v", (), 1, "why"))
    tx.rollback(mark)
    assert tx.get("states", "psn-a") == {"v": 2}
    assert tx.get("states", "psn-b") is None
    assert tx.outputs == []


def test_a_key_of_another_partition_cannot_be_written() -> None:
    tx = new_tx(partition_of=lambda table, key: 3)
    with pytest.raises(ValueError, match="partition 3"):
        tx.put("states", "psn-a", {"v": 2})


def test_a_dead_letter_too_big_for_the_broker_keeps_a_cut_copy_its_size_and_hash() -> None:
    tx = new_tx()
    value = b"x" * 1_200_000
    tx.dead_letter(
        SetAside(
            "emeuse.chronic.reading-recorded.v1",
            2,
            40,
            b"psn-a",
            value,
            ((b"\xff\xfe", b"raw"), ("ce_id", b"1")),
            DeadLetterCause.DEAD_LETTER_CAUSE_UNREADABLE,
            "header key is not UTF-8",
        )
    )
    [record] = tx.outputs
    assert len(record.value) <= 900_000
    letter = MessageDeadLettered.FromString(record.value)
    assert letter.truncated and letter.original_value_size == 1_200_000
    assert letter.original_value_sha256 == hashlib.sha256(value).digest()
    assert value.startswith(letter.original_value)
    assert letter.source_partition == 2 and letter.source_offset == 40


LISTED = {"slots": {"55|a": {"n": 1}, "55|b": {"n": 2}}}


def transaction() -> Tx:
    """A transaction over committed slots, listed as the store would list them."""
    return Tx(
        0,
        Origin("access", "emeuse/access", "baseline"),
        dead_letter_topic("access"),
        lambda table, key: LISTED.get(table, {}).get(key),
        lambda table, key: 0,
        lambda table: LISTED.get(table, {}).items(),
    )


def test_a_listing_shows_what_the_transaction_wrote_changed_and_deleted():
    tx = transaction()
    tx.put("slots", "55|c", {"n": 3})
    tx.put("slots", "55|a", {"n": 10})
    tx.delete("slots", "55|b")
    tx.put("requests", "55|r", {"n": 4})
    assert tx.items("slots") == [("55|a", {"n": 10}), ("55|c", {"n": 3})]
    assert tx.items("requests") == [("55|r", {"n": 4})]


def test_a_rolled_back_write_is_no_longer_listed():
    tx = transaction()
    mark = tx.savepoint()
    tx.put("slots", "55|c", {"n": 3})
    tx.rollback(mark)
    assert tx.items("slots") == [("55|a", {"n": 1}), ("55|b", {"n": 2})]


def test_a_record_the_broker_would_refuse_fails_its_handler_not_the_batch() -> None:
    # Raised in the handler, so the kernel dead-letters that input; accepted, it would fail
    # the whole transaction at commit, and every retry of it.
    tx = new_tx()
    huge = OutRecord("emeuse.partner.feed.v1", b"psn-a", b"x" * (OUTPUT_MAX_BYTES + 1), [])
    with pytest.raises(OutputTooLargeError, match="at most 1,000,000"):
        tx.send(huge)
    assert tx.empty
    tx.send(OutRecord("emeuse.partner.feed.v1", b"psn-a", b"x" * 1000, []))
    assert len(tx.outputs) == 1


def test_metrics_of_a_failed_handler_are_dropped_with_its_writes() -> None:
    counted: list[float] = []

    class Counter:
        def inc(self, amount: float = 1.0) -> None:
            counted.append(amount)

    tx = new_tx()
    tx.count(Counter())
    mark = tx.savepoint()
    tx.count(Counter(), 5)
    tx.rollback(mark)
    assert counted == []  # nothing counted before the commit
    for apply in tx.committed():
        apply()
    assert counted == [1.0]


def test_a_counter_counted_per_record_is_incremented_once_with_the_sum() -> None:
    counted: list[float] = []

    class Counter:
        def inc(self, amount: float = 1.0) -> None:
            counted.append(amount)

    tx, metric = new_tx(), Counter()
    for _ in range(3):
        tx.count(metric)
    tx.count(metric, 2)
    for apply in tx.committed():
        apply()
    assert counted == [5.0]
