"""The watchdog's decision for one partition: resume once stuck, rebalance if still stuck."""

from faust.types import TP

from emeuse.runtime.watchdog import SETTLE_LIMIT_S, STALL_S, PartitionWatch

TOPIC = TP("emeuse.home.home-configured.v1", 3)


def test_a_partition_read_to_its_end_is_never_stalled():
    watch = PartitionWatch("home")
    for second in range(0, 120, 5):
        assert watch.observe(TOPIC, position=7, end=7, now=float(second)) is None


def test_a_partition_that_keeps_moving_is_not_stalled():
    watch = PartitionWatch("home")
    for step, second in enumerate(range(0, 120, 5)):
        assert watch.observe(TOPIC, position=step, end=step + 50, now=float(second)) is None


def test_records_waiting_behind_a_still_position_resume_then_rebalance_once_each():
    watch = PartitionWatch("home")
    actions = [
        watch.observe(TOPIC, position=4, end=5, now=float(second)) for second in range(0, 61, 5)
    ]
    assert actions.count("resume") == 1 and actions.count("rejoin") == 1
    assert actions.index("resume") == int(STALL_S / 5)
    assert actions.index("rejoin") == int(2 * STALL_S / 5)


def test_progress_after_a_resume_starts_the_count_again():
    watch = PartitionWatch("home")
    assert watch.observe(TOPIC, 4, 5, 0.0) is None
    assert watch.observe(TOPIC, 4, 5, STALL_S) == "resume"
    assert watch.observe(TOPIC, 5, 9, STALL_S + 5) is None
    assert watch.observe(TOPIC, 5, 9, 2 * STALL_S + 5) == "resume"


def test_a_partition_no_longer_assigned_is_forgotten():
    watch = PartitionWatch("home")
    watch.observe(TOPIC, 4, 5, 0.0)
    watch.forget_except(set())
    assert watch.observe(TOPIC, 4, 5, STALL_S) is None


def test_positions_standing_still_during_a_rebalance_are_not_a_stall():
    watch = PartitionWatch("home")
    for second in range(0, 60, 5):
        assert watch.settling(rebalancing=True, now=float(second))
    assert not watch.settling(rebalancing=False, now=60.0)
    assert watch.observe(TOPIC, 4, 5, 60.0) is None
    assert watch.observe(TOPIC, 4, 5, 60.0 + STALL_S) == "resume"


def test_a_rebalance_that_never_ends_is_watched_after_the_limit():
    watch = PartitionWatch("home")
    assert watch.settling(rebalancing=True, now=0.0)
    assert not watch.settling(rebalancing=True, now=SETTLE_LIMIT_S)
