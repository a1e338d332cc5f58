"""The kernel shortens aiokafka's fixed wait after CONCURRENT_TRANSACTIONS (see engine.py):
if an aiokafka upgrade renames or drops that constant, the setting would silently do
nothing and every commit would again wait 20 ms. These tests say so first."""

import inspect

import aiokafka.producer.sender as sender

from emeuse.kernel import engine


def test_the_wait_after_concurrent_transactions_is_the_kernels() -> None:
    assert sender.BACKOFF_OVERRIDE == engine.CONCURRENT_TRANSACTIONS_RETRY_S
    assert engine.CONCURRENT_TRANSACTIONS_RETRY_S < 0.02  # aiokafka's own: 20 ms


def test_aiokafka_still_waits_that_constant_when_adding_partitions_meets_them() -> None:
    handling = inspect.getsource(sender.AddPartitionsToTxnHandler.handle_response)
    assert "ConcurrentTransactions" in handling
    assert "BACKOFF_OVERRIDE" in handling
