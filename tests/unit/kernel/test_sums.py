"""Gauges of state summed over the partitions held: counted when a partition is opened,
changed by committed deltas, dropped when it is let go."""

from __future__ import annotations

from emeuse.kernel.sums import PartitionSums, difference, total


def test_a_difference_turns_the_figures_before_into_those_after():
    before = {"timelines": 1, "entries": 4, "at_risk:55": 1}
    after = {"timelines": 1, "entries": 5, "at_risk:54": 1}
    delta = difference(before, after)
    assert delta == {"entries": 1, "at_risk:55": -1, "at_risk:54": 1}
    assert {k: v for k, v in total([before, delta]).items() if v} == after


def test_the_value_is_the_sum_over_the_partitions_held():
    sums = PartitionSums()
    sums.opened(0, {"entries": 10})
    sums.opened(3, {"entries": 5, "timelines": 2})
    sums.add(3, {"entries": 2})
    assert sums.value("entries") == 17
    assert sums.value("timelines") == 2
    assert sums.value("never_counted") == 0


def test_a_partition_let_go_no_longer_counts_and_its_late_changes_are_ignored():
    sums = PartitionSums()
    sums.opened(0, {"entries": 10})
    sums.opened(1, {"entries": 4})
    sums.closed(1)
    sums.add(1, {"entries": 100})  # its next owner counts it from its state
    assert sums.value("entries") == 10
    assert sums.partitions() == {0}


def test_opening_a_partition_again_counts_it_afresh_not_on_top():
    sums = PartitionSums()
    sums.opened(2, {"entries": 4})
    sums.add(2, {"entries": 1})
    sums.opened(2, {"entries": 7})
    assert sums.value("entries") == 7


def test_a_recount_replaces_the_figures_it_counts_and_leaves_the_others():
    sums = PartitionSums()
    sums.opened(4, {"waiting:55": 3, "upcoming:55": 10, "waiting:54": 2})
    sums.opened(5, {"waiting:52": 1})
    sums.recounted(4, {"waiting:55": 0, "upcoming:55": 12})  # the Meuse's agenda counted again
    assert sums.values("waiting:55", "upcoming:55", "waiting:54", "waiting:52") == (0, 12, 2, 1)


def test_a_recount_of_a_partition_let_go_is_ignored():
    sums = PartitionSums()
    sums.opened(4, {"waiting:55": 3})
    sums.closed(4)
    sums.recounted(4, {"waiting:55": 5})  # committed as it went: its next owner counts it
    assert sums.value("waiting:55") == 0
    assert sums.partitions() == set()
