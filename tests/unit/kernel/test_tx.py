"""A transaction lists a table's entries of its partition with its own writes over them."""

from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import Tx
from emeuse.registry import dead_letter_topic

COMMITTED = {"slots": {"55|a": {"n": 1}, "55|b": {"n": 2}}}


def transaction() -> Tx:
    return Tx(
        0,
        Origin("access", "emeuse/access", "baseline"),
        dead_letter_topic("access"),
        lambda table, key: COMMITTED.get(table, {}).get(key),
        lambda table, key: 0,
        lambda table: COMMITTED.get(table, {}).items(),
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
