"""A known month of events, folded partition by partition, gives the hand-counted indicators."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from emeuse.registry import PARTITIONS
from emeuse.runtime.codec import check_event, check_partition, expected_partition
from services.evaluation.contributions import RULES, published_by
from services.evaluation.domain import cells, histogram, periods
from services.evaluation.grpc_api import from_partial, published, to_partial
from services.evaluation.processing import CELLS, INPUTS, cell_key, parse_cell_key
from tests.unit.evaluation.partitions import Partitions, partition_of
from tests.unit.evaluation.scenario import EXPECTED, envelope_of, month_of_events


@pytest.fixture(scope="module")
def folded() -> Partitions:
    state = Partitions()
    for sent in month_of_events():
        state.handle(sent)
    return state


def unsuppressed(
    state: Partitions, weekly: bool = False
) -> dict[tuple[str, str, str], dict[tuple[str, str], float]]:
    """Every partition's cells merged per experiment, territory and month (or week), as
    figures."""
    by_cell: dict[tuple[str, str, str], list[cells.Cell]] = defaultdict(list)
    for key, cell in state.cells():
        where = parse_cell_key(key)
        if bool(periods.WEEK.fullmatch(where[2])) == weekly:
            by_cell[where].append(cell)
    return {
        where: {
            (f.name, f.breakdown): f.value
            for f in cells.figures(where[2], cells.merge(parts), frozenset())
        }
        for where, parts in by_cell.items()
    }


def test_the_scenario_is_made_of_events_the_bus_accepts():
    for sent in month_of_events():
        check_event(sent.spec, envelope_of(sent), sent.message, sent.key)
        check_partition(
            sent.spec, sent.key.encode(), expected_partition(sent.partition_key, 6), sent.message
        )


def test_every_indicator_matches_the_hand_counts(folded: Partitions):
    figures = unsuppressed(folded)
    assert set(figures) == set(EXPECTED)
    for where, expected in EXPECTED.items():
        got = figures[where]
        assert set(got) == set(expected), where
        for indicator, value in expected.items():
            if indicator[0].endswith((".median", ".p90")):
                assert got[indicator] == pytest.approx(value, rel=histogram.PRECISION), indicator
            else:
                assert got[indicator] == value, indicator


def test_a_month_is_counted_on_several_partitions_and_only_their_sum_is_the_figure(
    folded: Partitions,
):
    partitions_with_march = {
        p
        for p in range(6)
        for key, _ in folded.cells([p])
        if key.endswith("|telesuivi-meuse|55|2026-03")
    }
    assert len(partitions_with_march) > 1


def test_a_person_counts_once_a_month_in_each_experiment_and_territory(folded: Partitions):
    figures = unsuppressed(folded)
    # psn-p01 read 2 times in March and 3 in February for the telemonitoring experiment,
    # and twice in March for the baseline: one person in each of the three cells.
    assert figures[("telesuivi-meuse", "55", "2026-03")][("chronic.patients_monitored", "")] == 12
    assert figures[("telesuivi-meuse", "55", "2026-02")][("chronic.patients_monitored", "")] == 1
    assert figures[("baseline", "55", "2026-03")][("chronic.patients_monitored", "")] == 5


def test_what_is_published_withholds_small_cells_and_names_no_one(folded: Partitions):
    parts = [
        to_partial(parse_cell_key(k)[2], c)
        for k, c in folded.cells()
        if "|telesuivi-meuse|55|2026-03" in k
    ]
    shown = {
        (i.name, i.breakdown): i for i in published({"2026-03": [from_partial(p) for p in parts]})
    }
    assert shown[("chronic.alerts", "")].value == 14
    # 14 - 11 would give the 3 warnings away: the 11 is withheld beside them.
    assert shown[("chronic.alerts", "severity=warning")].suppressed
    assert shown[("chronic.alerts", "severity=critical")].suppressed
    assert shown[("chronic.monitoring_gaps", "")].suppressed
    assert shown[("chronic.monitoring_gaps", "")].value == 0
    assert shown[("home.escalations_to_samu", "")].suppressed
    assert not shown[("chronic.time_to_acknowledge.median", "")].suppressed
    assert shown[("chronic.patients_monitored", "")].unit == "persons"
    assert shown[("access.wait_to_booking.p90", "")].unit == "seconds"
    assert all("psn-" not in i.breakdown and "psn-" not in i.name for i in shown.values())


def test_quantiles_of_fewer_than_ten_durations_are_withheld():
    cell = cells.empty()
    for n in range(9):
        cells.add_duration(cell, "home.time_to_acknowledge", 60 + n)
    shown = {f.name: f for f in cells.suppressed(cells.figures("2026-03", cell, frozenset()))}
    assert shown["home.time_to_acknowledge.median"].suppressed
    assert shown["home.time_to_acknowledge.observations"].suppressed


@pytest.mark.parametrize("seconds", [0.2, 1, 7, 59, 3600, 86_400 * 30, 86_400 * 90])
def test_a_duration_comes_back_within_the_documented_precision(seconds: float):
    buckets: histogram.Buckets = {}
    histogram.add(buckets, seconds)
    value = histogram.quantile(buckets, 0.5)
    assert value is not None
    if seconds >= 1:
        assert math.isclose(value, seconds, rel_tol=histogram.PRECISION)
    else:
        assert value < 1


def test_ninety_days_of_durations_fit_in_a_bounded_histogram():
    assert histogram.bucket_of(86_400 * 90) < 170


def test_every_topic_read_has_a_rule_and_every_partition_a_cell_key_of_its_own():
    assert {spec.message for spec in INPUTS} == set(RULES)
    for partition in range(PARTITIONS):
        key = cell_key(partition, "telesuivi-meuse", "55", "2026-03")
        assert partition_of(CELLS, key) == partition


def test_only_what_a_partner_published_counts_for_that_partner():
    assert published_by("emeuse/chronic") == []
    (count,) = published_by("partner/glucoflow")
    assert (count.name, count.breakdowns) == ("partners.events_published", ("partner=glucoflow",))
