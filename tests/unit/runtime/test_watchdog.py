"""The watchdog's decisions for one partition: resume once stuck while the worker is idle,
then a group rebalance (rarely); never while positions stand still on purpose. And for
table recovery: a rebalance when it reads nothing with records left."""

import itertools

from faust.types import TP

from emeuse.runtime.watchdog import (
    NO_POSITION,
    RECOVERY_REJOIN_EVERY_S,
    RECOVERY_STALL_S,
    REJOIN_EVERY_S,
    STALL_S,
    UNSETTLED_REPORT_S,
    WATCH_INTERVAL_S,
    PartitionWatch,
    RecoveryWatch,
)

TOPIC = TP("emeuse.home.home-configured.v1", 3)
OTHER = TP("emeuse.home.sensor-event-reported.v1", 3)


def rounds(watch, position, end, start, stop, settled=lambda second: True, tp=TOPIC):
    """Watch rounds every WATCH_INTERVAL_S from `start` to `stop` s: the actions taken."""
    actions = []
    second = start
    while second <= stop:
        if watch.begin_round(second, settled=settled(second)):
            actions.append((second, watch.observe(tp, position, end, second)))
        second += WATCH_INTERVAL_S
    return [(second, action) for second, action in actions if action]


def test_a_partition_read_to_its_end_is_never_stalled():
    assert rounds(PartitionWatch("home"), position=7, end=7, start=0, stop=600) == []


def test_a_partition_that_keeps_moving_is_not_stalled():
    watch = PartitionWatch("home")
    for step in range(100):
        assert watch.begin_round(step * WATCH_INTERVAL_S, settled=True)
        assert watch.observe(TOPIC, step, step + 50, step * WATCH_INTERVAL_S) is None


def test_records_waiting_behind_a_still_position_resume_first_then_rebalance():
    actions = rounds(PartitionWatch("home"), position=4, end=5, start=0, stop=60)
    assert actions == [(STALL_S, "resume"), (2 * STALL_S, "rejoin")]


def test_the_group_is_asked_to_rebalance_at_most_once_every_few_minutes():
    watch = PartitionWatch("home")
    first = rounds(watch, position=4, end=5, start=0, stop=3 * STALL_S)
    # The rebalance changed nothing: the clock starts again, the next ask waits.
    watch.begin_round(3 * STALL_S + WATCH_INTERVAL_S, settled=False)
    again = rounds(watch, 4, 5, start=3 * STALL_S + 2 * WATCH_INTERVAL_S, stop=REJOIN_EVERY_S)
    later = rounds(watch, 4, 5, start=REJOIN_EVERY_S + WATCH_INTERVAL_S, stop=2 * REJOIN_EVERY_S)
    assert [a for _, a in first] == ["resume", "rejoin"]
    assert [a for _, a in again] == ["resume"]
    assert [a for _, a in later] == ["rejoin"]


def test_progress_after_a_resume_starts_the_count_again():
    watch = PartitionWatch("home")
    assert rounds(watch, 4, 5, start=0, stop=STALL_S) == [(STALL_S, "resume")]
    moved = rounds(watch, 5, 9, start=STALL_S + 5, stop=STALL_S + 5 + STALL_S)
    assert moved == [(2 * STALL_S + 5, "resume")]


def test_positions_standing_still_while_the_worker_is_busy_or_rebalancing_are_not_a_stall():
    watch = PartitionWatch("home")
    # Seen stuck, then the agent is busy (or faust rebalances) for a long while.
    assert rounds(watch, 4, 5, start=0, stop=5) == []
    assert rounds(watch, 4, 5, 10, 120, settled=lambda second: False) == []
    # Settled again: the clock starts from there, not from the first sighting.
    assert rounds(watch, 4, 5, start=125, stop=125 + STALL_S) == [(125 + STALL_S, "resume")]


def test_a_gap_between_rounds_restarts_the_clock():
    watch = PartitionWatch("home")
    assert rounds(watch, 4, 5, start=0, stop=5) == []
    # A round blocked on the broker for a minute: its position tells nothing.
    assert not watch.begin_round(65, settled=True)
    assert rounds(watch, 4, 5, start=70, stop=70 + STALL_S) == [(70 + STALL_S, "resume")]


def test_a_partition_no_longer_watched_is_forgotten():
    watch = PartitionWatch("home")
    assert rounds(watch, 4, 5, start=0, stop=5) == []
    rounds(watch, 1, 2, start=0, stop=5, tp=OTHER)
    watch.forget_except({OTHER})
    assert set(watch.stalls) == {OTHER}
    assert rounds(watch, 4, 5, start=10, stop=10 + STALL_S - WATCH_INTERVAL_S) == []


def test_a_worker_unsettled_for_long_is_reported_once_a_minute():
    watch = PartitionWatch("home")
    reports = [
        (second, watch.long_unsettled(float(second), settled=False)) for second in range(0, 181, 5)
    ]
    assert [(s, r) for s, r in reports if r is not None] == [
        (UNSETTLED_REPORT_S, UNSETTLED_REPORT_S),
        (2 * UNSETTLED_REPORT_S, 2 * UNSETTLED_REPORT_S),
        (3 * UNSETTLED_REPORT_S, 3 * UNSETTLED_REPORT_S),
    ]
    assert watch.long_unsettled(185.0, settled=True) is None
    assert watch.long_unsettled(190.0, settled=False) is None  # counted afresh


def test_a_partition_left_without_a_fetch_position_is_a_stall_once_it_has_records():
    assert rounds(PartitionWatch("home"), position=NO_POSITION, end=0, start=0, stop=60) == []
    actions = rounds(PartitionWatch("home"), position=NO_POSITION, end=3, start=0, stop=30)
    assert [a for _, a in actions] == ["resume", "rejoin"]


CHANGELOG = TP("emeuse-home-resident_to_home-changelog", 0)


def recovery_rounds(watch, left_at, stop, generation_at=lambda second: 1):
    """Recovery watch rounds every WATCH_INTERVAL_S up to `stop` s; `left_at(second)` is what
    recovery has left to read then (None: not reading). The seconds it asked to rebalance."""
    asked, second = [], 0.0
    while second <= stop:
        if watch.stalled(second, left_at(second), generation_at(second)) is not None:
            asked.append(second)
        second += WATCH_INTERVAL_S
    return asked


def test_a_recovery_that_reads_nothing_with_records_left_rebalances_less_and_less_often():
    asked = recovery_rounds(RecoveryWatch(), lambda s: {CHANGELOG: 12}, stop=400)
    first, pause = RECOVERY_STALL_S, RECOVERY_REJOIN_EVERY_S
    assert asked[:3] == [first, first + pause, first + 3 * pause]
    assert all(b - a <= REJOIN_EVERY_S for a, b in itertools.pairwise(asked))


def test_a_recovery_that_keeps_reading_is_left_alone_however_long_it_takes():
    assert recovery_rounds(RecoveryWatch(), lambda s: {CHANGELOG: int(10_000 - s)}, 300) == []


def test_a_worker_not_recovering_or_with_nothing_left_is_never_rebalanced():
    assert recovery_rounds(RecoveryWatch(), lambda s: None, stop=120) == []
    assert recovery_rounds(RecoveryWatch(), lambda s: {CHANGELOG: 0}, stop=120) == []


def test_a_new_recovery_or_generation_starts_the_clock_again():
    # Stuck until 10 s, then recovering something else: judged from 10 s on, not from 0.
    left = lambda s: {CHANGELOG: 12} if s < 10 else {CHANGELOG: 12, TOPIC: 3}  # noqa: E731
    assert recovery_rounds(RecoveryWatch(), left, stop=60)[0] == 10 + RECOVERY_STALL_S
    # The same counts in a new generation of the group are a new recovery.
    generation = lambda s: 1 if s < 10 else 2  # noqa: E731
    stuck = lambda s: {CHANGELOG: 12}  # noqa: E731
    assert recovery_rounds(RecoveryWatch(), stuck, 60, generation)[0] == 10 + RECOVERY_STALL_S


def test_a_recovery_read_to_its_end_makes_the_next_stall_a_first_one():
    watch = RecoveryWatch()
    assert recovery_rounds(watch, lambda s: {CHANGELOG: 12}, stop=50) == [15, 45]
    # Recovery then reads to its end; a later stall is retried after the first pause again.
    left = lambda s: {} if s < 100 else {CHANGELOG: 5}  # noqa: E731
    asked = [s for s in recovery_rounds(watch, left, stop=200) if s >= 100]
    assert asked[:2] == [100 + RECOVERY_STALL_S, 100 + RECOVERY_STALL_S + RECOVERY_REJOIN_EVERY_S]


def test_a_position_past_the_group_s_commit_while_idle_is_read_again_after_a_while():
    watch = PartitionWatch("home")
    asked = [s for s in range(0, 41, 5) if watch.skipped(TOPIC, 20, 1, float(s))]
    # Seen at 0 s, read again at STALL_S; from the same commit once only (no loop).
    assert asked == [STALL_S]
    # The commit moved (the re-read records were handled) but records were dropped again.
    assert not watch.skipped(TOPIC, 30, 20, 45.0)
    assert watch.skipped(TOPIC, 30, 20, 45.0 + STALL_S)


def test_a_position_at_the_commit_or_moving_is_not_a_skip():
    watch = PartitionWatch("home")
    assert not any(watch.skipped(TOPIC, 5, 5, float(s)) for s in range(0, 60, 5))
    assert not any(watch.skipped(TOPIC, 5 + s, 1, float(s)) for s in range(0, 60, 5))
    assert not any(watch.skipped(TOPIC, 5, None, float(s)) for s in range(0, 60, 5))


def test_a_busy_or_rebalancing_round_restarts_the_skip_clock():
    watch = PartitionWatch("home")
    assert not watch.skipped(TOPIC, 20, 1, 0.0)
    watch.begin_round(5.0, settled=False)
    assert not watch.skipped(TOPIC, 20, 1, STALL_S)  # counted again from here
    assert watch.skipped(TOPIC, 20, 1, 2 * STALL_S)
