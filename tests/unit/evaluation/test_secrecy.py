"""Secondary suppression on hand-built tables: what is withheld, and that no withheld small
count can be found again from what is shown (an attacker trying every non-negative
whole-number filling of the blanks that keeps every sum true)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

import pytest

from services.evaluation.domain.secrecy import Key, Relation, withheld

TOTAL: Key = ("alerts", "")


def fillings(
    counts: Mapping[Key, float], hidden: set[Key], sums: list[tuple[Key, list[Key]]]
) -> list[dict[Key, int]]:
    """Every way to fill the blanks (0 to the largest count) that keeps each
    `total = Σ parts` true, written out by hand for each table, independent of secrecy.py."""
    blanks = sorted(hidden)
    top = int(max(counts.values()))
    out = []
    for values in itertools.product(range(top + 1), repeat=len(blanks)):
        seen = {**counts, **dict(zip(blanks, values, strict=True))}
        if all(seen[total] == sum(seen[p] for p in parts) for total, parts in sums):
            out.append({k: int(seen[k]) for k in blanks})
    return out


def assert_none_found_again(
    counts: Mapping[Key, float], hidden: set[Key], sums: list[tuple[Key, list[Key]]]
) -> None:
    possible = fillings(counts, hidden, sums)
    assert possible, "the true values are always one filling"
    for key in hidden:
        if 0 < counts[key] < 10:
            assert len({f[key] for f in possible}) > 1, f"{key} is found again"


def test_a_lone_small_breakdown_takes_the_next_smallest_with_it():
    counts = {TOTAL: 25, ("alerts", "severity=info"): 3, ("alerts", "severity=warning"): 10}
    counts[("alerts", "severity=critical")] = 12
    hidden = withheld(counts)
    # 25 - 10 - 12 would give the 3 away: the 10, next smallest, is withheld too.
    assert hidden == {("alerts", "severity=info"), ("alerts", "severity=warning")}
    rows = [k for k in counts if k[1]]
    assert_none_found_again(counts, hidden, [(TOTAL, rows)])


def test_two_small_breakdowns_protect_each_other():
    counts = {
        ("consultations", ""): 15,
        ("consultations", "outcome=kept"): 10,
        ("consultations", "outcome=missed"): 2,
        ("consultations", "outcome=cancelled"): 3,
    }
    hidden = withheld(counts)
    assert hidden == {("consultations", "outcome=missed"), ("consultations", "outcome=cancelled")}
    assert_none_found_again(counts, hidden, [(("consultations", ""), [k for k in counts if k[1]])])


def test_each_dimension_of_a_total_is_protected_on_its_own():
    counts = {
        TOTAL: 14,
        ("alerts", "severity=critical"): 11,
        ("alerts", "severity=warning"): 3,
        ("alerts", "rule=inr"): 11,
        ("alerts", "rule=gap"): 3,
        ("gaps", ""): 3,
    }
    gaps = Relation(("gaps", ""), (("alerts", "rule=gap"),))
    hidden = withheld(counts, [gaps])
    assert hidden == {
        ("alerts", "severity=critical"),
        ("alerts", "severity=warning"),
        ("alerts", "rule=inr"),
        ("alerts", "rule=gap"),
        ("gaps", ""),
    }
    assert_none_found_again(
        counts,
        hidden,
        [
            (TOTAL, [("alerts", "severity=critical"), ("alerts", "severity=warning")]),
            (TOTAL, [("alerts", "rule=inr"), ("alerts", "rule=gap")]),
            (("gaps", ""), [("alerts", "rule=gap")]),
        ],
    )


def test_a_small_total_is_not_given_away_by_its_breakdowns():
    counts = {TOTAL: 4, ("alerts", "severity=critical"): 0, ("alerts", "severity=warning"): 4}
    hidden = withheld(counts)
    assert hidden == {TOTAL, ("alerts", "severity=warning")}
    # Zeros are shown: a zero is no person.
    assert_none_found_again(counts, hidden, [(TOTAL, [k for k in counts if k[1]])])


def test_a_small_unpublished_rest_is_protected_like_a_withheld_count():
    # 12 escalations, 10 to the SAMU: the 2 others would be 12 - 10.
    counts = {("escalations", ""): 12, ("escalations_to_samu", ""): 10}
    samu = Relation(("escalations", ""), (("escalations_to_samu", ""),))
    hidden = withheld(counts, [samu])
    assert hidden == {("escalations_to_samu", "")}
    rest = ("others", "")
    seen = {**counts, rest: 2}
    assert_none_found_again(
        seen, hidden | {rest}, [(("escalations", ""), [("escalations_to_samu", ""), rest])]
    )


def test_a_count_given_away_through_another_indicator_is_protected_there_too():
    # 13 alerts, all critical: 3 by the INR rule, 10 gaps, and `gaps` repeats the 10.
    # Withholding the 10 by rule is not enough while `gaps` shows it (and the total would
    # come back from the severity row): `gaps` goes as well, the total stays.
    gap, inr, gaps = ("alerts", "rule=gap"), ("alerts", "rule=inr"), ("gaps", "")
    counts = {TOTAL: 13, ("alerts", "severity=critical"): 13, inr: 3, gap: 10, gaps: 10}
    hidden = withheld(counts, [Relation(gaps, (gap,))])
    assert hidden == {inr, gap, gaps}
    sums = [(TOTAL, [("alerts", "severity=critical")]), (TOTAL, [inr, gap]), (gaps, [gap])]
    assert_none_found_again(counts, hidden, sums)


def test_a_table_without_small_counts_is_shown_whole():
    counts = {TOTAL: 30, ("alerts", "severity=critical"): 10, ("alerts", "severity=info"): 20}
    assert withheld(counts) == set()


def test_in_random_tables_no_small_count_is_a_combination_of_what_is_shown():
    """300 tables drawn from a hidden cross-table (severity by rule): the attacker knows the
    total, both rows of breakdowns, and that each row sums to the total. A small count is
    found again exactly when its unit vector is in the row space of those sums over the
    withheld counts: checked with numpy's rank, not the service's own elimination."""
    numpy = pytest.importorskip("numpy")
    draw = random.Random(14)
    for _ in range(300):
        cross = [[draw.choice((0, 1, 2, 3, 5, 8, 13)) for _ in range(3)] for _ in range(2)]
        severity = {("a", f"severity={i}"): float(sum(row)) for i, row in enumerate(cross)}
        rule = {
            ("a", f"rule={j}"): float(sum(col)) for j, col in enumerate(zip(*cross, strict=True))
        }
        counts = {("a", ""): float(sum(map(sum, cross))), **severity, **rule}
        hidden = sorted(withheld(counts))
        column = {key: n for n, key in enumerate(hidden)}
        sums = []
        for parts in (severity, rule):
            row = [0.0] * len(hidden)
            for key, sign in ((("a", ""), 1.0), *((p, -1.0) for p in parts)):
                if key in column:
                    row[column[key]] += sign
            sums.append(row)
        matrix = numpy.array(sums) if hidden else numpy.zeros((0, 0))
        base = numpy.linalg.matrix_rank(matrix) if hidden else 0
        for key in hidden:
            if 0 < counts[key] < 10:
                unit = numpy.eye(len(hidden))[column[key]]
                grown = numpy.linalg.matrix_rank(numpy.vstack([matrix, unit]))
                assert grown > base, (counts, hidden, key)
