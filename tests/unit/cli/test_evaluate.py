"""`emeuse evaluate` writes what the evaluation service answers: CSV rows, and plots."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pytest

from emeuse.cli.evaluate import cmd_evaluate, months_between, weeks_touching
from emeuse.cli.main import build_parser
from emeuse.evaluation.v1 import evaluation_service_pb2 as api

ANSWERS = {
    "55": [
        api.Indicator(month="2026-01", name="chronic.readings", unit="count", value=240),
        api.Indicator(month="2026-02", name="chronic.readings", unit="count", value=310),
        api.Indicator(
            month="2026-02",
            name="chronic.alerts",
            breakdown="severity=critical",
            unit="count",
            suppressed=True,
        ),
    ],
    "54": [api.Indicator(month="2026-02", name="chronic.readings", unit="count", value=57)],
}
WEEKLY = [
    api.Indicator(week="2026-W01", name="chronic.readings", unit="count", value=61),
    api.Indicator(week="2026-W02", name="chronic.readings", unit="count", suppressed=True),
]


def fake_service(asked: list[tuple[str, ...]]):
    def fetch(
        experiment: str, territory: str, first: str, last: str, period: str
    ) -> Sequence[api.Indicator]:
        asked.append((experiment, territory, first, last, period))
        return WEEKLY if period == "week" else ANSWERS[territory]

    return fetch


def evaluate(tmp_path: Path, *territories: str, period: str = "") -> list[dict[str, str]]:
    asked: list[tuple[str, ...]] = []
    argv = ["evaluate", "--experiment", "telesuivi", "--from", "2026-01", "--to", "2026-03"]
    for territory in territories:
        argv += ["--territory", territory]
    if period:
        argv += ["--period", period]
    args = build_parser().parse_args([*argv, "--out", str(tmp_path / "out")])
    assert cmd_evaluate(args, fetch=fake_service(asked)) == 0
    expected = period or "month"
    assert asked == [("telesuivi", t, "2026-01", "2026-03", expected) for t in territories]
    with (tmp_path / "out" / "indicators.csv").open(encoding="utf-8") as table:
        return list(csv.DictReader(table))


def test_each_territory_asked_becomes_rows_of_the_table(tmp_path: Path):
    rows = evaluate(tmp_path, "55", "54")
    assert [(r["territory"], r["month"], r["indicator"], r["value"]) for r in rows] == [
        ("55", "2026-01", "chronic.readings", "240"),
        ("55", "2026-02", "chronic.readings", "310"),
        ("55", "2026-02", "chronic.alerts", ""),
        ("54", "2026-02", "chronic.readings", "57"),
    ]
    assert rows[0]["axis"] == "chronic"


def test_a_withheld_figure_is_blank_and_marked_not_zero(tmp_path: Path):
    (withheld,) = [r for r in evaluate(tmp_path, "55") if r["breakdown"]]
    assert (withheld["value"], withheld["suppressed"]) == ("", "yes")


def test_each_total_is_plotted_when_matplotlib_is_there(tmp_path: Path):
    pytest.importorskip("matplotlib")
    evaluate(tmp_path, "55", "54")
    plots = sorted(p.name for p in (tmp_path / "out" / "plots").iterdir())
    assert plots == ["chronic.readings.png"]
    assert (tmp_path / "out" / "plots" / "chronic.readings.png").read_bytes()[:4] == b"\x89PNG"


def test_months_run_across_a_new_year():
    assert months_between("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_weekly_figures_have_a_week_column(tmp_path: Path):
    rows = evaluate(tmp_path, "55", period="week")
    assert [(r["week"], r["value"], r["suppressed"]) for r in rows] == [
        ("2026-W01", "61", "no"),
        ("2026-W02", "", "yes"),
    ]
    assert "month" not in rows[0]


def test_the_weeks_of_a_quarter_start_in_the_year_before_when_january_does():
    weeks = weeks_touching("2026-01", "2026-03")
    # 1 January 2026 is a Thursday: its week began on Monday 29 December 2025.
    assert (weeks[0], weeks[-1], len(weeks)) == ("2026-W01", "2026-W14", 14)
