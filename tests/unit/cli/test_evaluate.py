"""`emeuse evaluate` writes what the evaluation service answers: CSV rows, and plots."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pytest

from emeuse.cli.evaluate import cmd_evaluate, every_span, months_between, weeks_touching
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


def test_a_total_withheld_in_every_month_gets_no_empty_plot(tmp_path: Path):
    pytest.importorskip("matplotlib")
    withheld = [
        api.Indicator(month="2026-02", name="home.incidents", unit="count", suppressed=True)
    ]

    def fetch(*_: str) -> Sequence[api.Indicator]:
        return [*ANSWERS["55"], *withheld]

    argv = ["evaluate", "--experiment", "telesuivi", "--territory", "55"]
    argv += ["--from", "2026-01", "--to", "2026-03", "--out", str(tmp_path)]
    assert cmd_evaluate(build_parser().parse_args(argv), fetch=fetch) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["chronic.readings.png"]
    # Still a row of the table, withheld.
    assert ",home.incidents,,count,,yes" in (tmp_path / "indicators.csv").read_text()


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


def test_the_parquet_table_holds_the_csv_rows_typed(tmp_path: Path):
    import pyarrow.parquet as pq

    rows = evaluate(tmp_path, "55", "54")
    table = pq.read_table(tmp_path / "out" / "indicators.parquet")
    assert table.schema.field("value").type == "double"
    assert table.schema.field("suppressed").type == "bool"
    as_csv = [
        {
            **r,
            "value": "" if r["value"] is None else f"{r['value']:g}",
            "suppressed": "yes" if r["suppressed"] else "no",
        }
        for r in table.to_pylist()
    ]
    assert as_csv == rows
    # A withheld figure is null, never a 0 a reader would take for "none".
    withheld = [r for r in table.to_pylist() if r["suppressed"]]
    assert [r["value"] for r in withheld] == [None]


def test_the_weekly_parquet_table_has_a_week_column(tmp_path: Path):
    import pyarrow.parquet as pq

    evaluate(tmp_path, "55", period="week")
    table = pq.read_table(tmp_path / "out" / "indicators.parquet")
    assert table.column_names[2] == "week"
    assert table.column("week").to_pylist() == ["2026-W01", "2026-W02"]


def test_an_experiment_is_plotted_against_the_baseline_of_each_territory(tmp_path: Path):
    pytest.importorskip("matplotlib")
    baseline = {
        "55": [api.Indicator(month="2026-02", name="chronic.readings", unit="count", value=120)],
        "54": [api.Indicator(month="2026-02", name="home.incidents", unit="count", value=12)],
    }
    asked: list[tuple[str, str]] = []

    def fetch(experiment: str, territory: str, *_: str) -> Sequence[api.Indicator]:
        asked.append((experiment, territory))
        return baseline[territory] if experiment == "usual-care" else ANSWERS[territory]

    argv = ["evaluate", "--experiment", "telesuivi", "--baseline", "usual-care"]
    argv += ["--territory", "55", "--territory", "54", "--from", "2026-01", "--to", "2026-03"]
    args = build_parser().parse_args([*argv, "--out", str(tmp_path)])
    assert cmd_evaluate(args, fetch=fetch) == 0
    assert asked == [
        ("telesuivi", "55"),
        ("telesuivi", "54"),
        ("usual-care", "55"),
        ("usual-care", "54"),
    ]
    with (tmp_path / "indicators.csv").open(encoding="utf-8") as table:
        rows = list(csv.DictReader(table))
    assert ("usual-care", "55", "120") in {
        (r["experiment"], r["territory"], r["value"]) for r in rows
    }
    # Only what both experiments count is compared; the territories' trends stay the
    # experiment's own.
    compared = sorted(p.name for p in (tmp_path / "plots" / "baseline").iterdir())
    assert compared == ["chronic.readings.png"]
    assert (tmp_path / "plots" / "baseline" / "chronic.readings.png").read_bytes()[:4] == (
        b"\x89PNG"
    )
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == ["chronic.readings.png"]


def test_the_progress_bar_goes_to_stderr_and_the_summary_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    evaluate(tmp_path, "55", "54")
    out, err = capsys.readouterr()
    assert "4 rows in" in out and "indicators.parquet" in out
    assert "evaluate:" in err and "2/2" in err
    assert "evaluate:" not in out


def test_a_plot_shows_every_month_asked_even_those_without_a_figure():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot(range(3), [float("nan"), 57, float("nan")])
    every_span(axes, months_between("2026-01", "2026-03"))
    assert [t.get_text() for t in axes.get_xticklabels()] == ["2026-01", "2026-02", "2026-03"]
    assert axes.get_xlim() == (-0.5, 2.5)
    plt.close(figure)
