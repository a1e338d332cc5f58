"""`emeuse evaluate`: the indicators of one experiment, as CSV and Parquet tables and PNG
plots.

Asks the evaluation service (GetIndicators: small cells already withheld, no pseudonym)
for each territory named, per month or (--period week) per ISO week, then writes:
  indicators.csv       one row per territory, month (or week), indicator and breakdown
  indicators.parquet   the same rows, typed (value a nullable float, suppressed a boolean)
  plots/<name>.png     each total's trend per month (or week), one line per territory
                       (matplotlib, when installed; suppressed periods are gaps, a total
                       withheld in every period has no plot)
  plots/baseline/<name>.png   with --baseline B: per territory, the experiment's trend
                       against the baseline experiment's in the same territory
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from emeuse.cli.environment import tool_channel
from emeuse.cli.errors import CliError
from emeuse.evaluation.v1 import evaluation_service_pb2 as api
from emeuse.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from emeuse.runtime.auth import AuthSetupError, bearer, read_token
from emeuse.runtime.settings import DEFAULT_PORTS

PERIODS = {"month": api.Period.PERIOD_MONTH, "week": api.Period.PERIOD_WEEK}
# The third column is the period asked: "month" (YYYY-MM) or "week" (YYYY-Www).
COLUMNS = (
    "experiment",
    "territory",
    "period",
    "axis",
    "indicator",
    "breakdown",
    "unit",
    "value",
    "suppressed",
)
# Asks for one territory's indicators: (experiment, territory, from, to, period) -> indicators.
Fetch = Callable[[str, str, str, str, str], Sequence[api.Indicator]]


def add_evaluate_command(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="an experiment's indicators as CSV tables and PNG plots"
    )
    evaluate.add_argument("--experiment", required=True, help="experiment id (ce_experiment)")
    evaluate.add_argument(
        "--territory",
        action="append",
        required=True,
        help="territory code (52, 54 or 55); repeat to compare territories",
    )
    evaluate.add_argument("--from", dest="from_month", required=True, help="first month YYYY-MM")
    evaluate.add_argument("--to", dest="to_month", required=True, help="last month YYYY-MM")
    evaluate.add_argument(
        "--period",
        choices=sorted(PERIODS),
        default="month",
        help="figures per month (default) or per ISO week (every week touching the months)",
    )
    evaluate.add_argument("--out", type=Path, required=True, help="directory to write into")
    evaluate.add_argument(
        "--baseline",
        metavar="EXPERIMENT",
        help="also read this experiment (the territory's usual care) and plot the one asked"
        " against it, territory by territory",
    )
    evaluate.add_argument(
        "--grpc",
        default=f"127.0.0.1:{DEFAULT_PORTS['evaluation'][0]}",
        help="the evaluation service's gRPC address",
    )
    evaluate.add_argument(
        "--token-file",
        type=Path,
        default=Path(".local/secrets/operator.token"),
        help="gRPC token of the caller (emeuse callers add operator)",
    )


def grpc_fetch(target: str, token_file: Path) -> Fetch:
    try:
        metadata = bearer(read_token(token_file))
    except AuthSetupError as exc:
        raise CliError(str(exc)) from None

    def fetch(
        experiment: str, territory: str, first: str, last: str, period: str
    ) -> Sequence[api.Indicator]:
        request = api.GetIndicatorsRequest(
            experiment_id=experiment,
            territory=territory,
            from_month=first,
            to_month=last,
            period=PERIODS[period],
        )
        with tool_channel(target) as channel:
            stub = api_grpc.EvaluationServiceStub(channel)
            try:
                answer = stub.GetIndicators(request, timeout=60, metadata=metadata)
            except grpc.RpcError as exc:
                raise CliError(f"evaluation service at {target}: {exc.details()}") from None
        return list(answer.indicators)

    return fetch


def columns(period: str) -> list[str]:
    return [period if c == "period" else c for c in COLUMNS]


def rows_of(
    experiment: str, territory: str, indicators: Sequence[api.Indicator], period: str = "month"
) -> list[dict]:
    return [
        {
            "experiment": experiment,
            "territory": territory,
            period: i.week or i.month,
            "axis": i.name.split(".", 1)[0],
            "indicator": i.name,
            "breakdown": i.breakdown,
            "unit": i.unit,
            # A withheld figure is left blank: a 0 would read as "none".
            "value": "" if i.suppressed else f"{i.value:g}",
            "suppressed": "yes" if i.suppressed else "no",
        }
        for i in indicators
    ]


def write_csv(path: Path, rows: Sequence[dict], period: str = "month") -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns(period))
        writer.writeheader()
        writer.writerows(rows)


def write_parquet(path: Path, rows: Sequence[dict], period: str = "month") -> None:
    """The CSV's rows, typed for analysis: a withheld value is null, not blank."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [c for c in columns(period) if c not in ("value", "suppressed")]
    types: list[tuple[str, pa.DataType]] = [(c, pa.string()) for c in text]
    types += [("value", pa.float64()), ("suppressed", pa.bool_())]
    schema = pa.schema(types)
    table = pa.Table.from_pylist(
        [
            {
                **{c: r[c] for c in text},
                "value": None if r["value"] == "" else float(r["value"]),
                "suppressed": r["suppressed"] == "yes",
            }
            for r in rows
        ],
        schema=schema,
    )
    pq.write_table(table, path)


def write_plots(
    directory: Path, rows: Sequence[dict], spans: Sequence[str], period: str = "month"
) -> int:
    """One PNG per total (no breakdown) with a figure shown, a line per territory over the
    months or weeks `spans`; 0 when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    names = sorted(shown_totals(rows))
    for name in names:
        figure, axes = plt.subplots(figsize=(8, 4))
        for territory in sorted({r["territory"] for r in rows}):
            values = trend(rows, name, spans, period, territory=territory)
            axes.plot(range(len(spans)), values, marker="o", label=f"territory {territory}")
        every_span(axes, spans)
        finish(figure, axes, name, unit_of(rows, name), directory / f"{name}.png")
        plt.close(figure)
    return len(names)


def write_baseline_plots(
    directory: Path,
    rows: Sequence[dict],
    spans: Sequence[str],
    experiment: str,
    baseline: str,
    period: str = "month",
) -> int:
    """One PNG per total that both experiments have: a panel per territory, the experiment's
    line against the baseline's; 0 when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    territories = sorted({r["territory"] for r in rows})

    def totals(of: str) -> set[str]:
        return shown_totals([r for r in rows if r["experiment"] == of])

    names = sorted(totals(experiment) & totals(baseline))
    for name in names:
        figure, panels = plt.subplots(
            1, len(territories), figsize=(5 * len(territories), 4), squeeze=False
        )
        for axes, territory in zip(panels[0], territories, strict=True):
            for of, style in ((experiment, "-"), (baseline, "--")):
                values = trend(rows, name, spans, period, territory=territory, experiment=of)
                axes.plot(range(len(spans)), values, style, marker="o", label=of)
            every_span(axes, spans)
            axes.set_ylim(bottom=0)
            axes.set_xlabel(f"territory {territory}")
            axes.legend()
        figure.suptitle(f"{name}: {experiment} against the baseline {baseline}")
        panels[0][0].set_ylabel(unit_of(rows, name))
        figure.tight_layout()
        figure.savefig(directory / f"{name}.png")
        plt.close(figure)
    return len(names)


def shown_totals(rows: Sequence[dict]) -> set[str]:
    """Totals with at least one figure shown: one withheld everywhere (a short or small
    run's) would be an empty plot."""
    return {r["indicator"] for r in rows if not r["breakdown"] and r["value"] != ""}


def trend(
    rows: Sequence[dict],
    name: str,
    spans: Sequence[str],
    period: str,
    territory: str,
    experiment: str | None = None,
) -> list[float]:
    """A total's value per span; NaN (a gap in the line) where withheld or absent."""
    by_span = {
        r[period]: float(r["value"])
        for r in rows
        if r["indicator"] == name and r["territory"] == territory and not r["breakdown"]
        if experiment is None or r["experiment"] == experiment
        if r["value"] != ""
    }
    return [by_span.get(span, float("nan")) for span in spans]


def every_span(axes: Any, spans: Sequence[str]) -> None:
    """Every month (or week) asked on the axis, those without a figure included."""
    axes.set_xticks(range(len(spans)), spans)
    axes.set_xlim(-0.5, len(spans) - 0.5)
    axes.tick_params(axis="x", labelrotation=45)


def unit_of(rows: Sequence[dict], name: str) -> str:
    return str(next(r["unit"] for r in rows if r["indicator"] == name))


def finish(figure: Any, axes: Any, title: str, unit: str, path: Path) -> None:
    axes.set_title(title)
    axes.set_ylabel(unit)
    # Counts and durations start at 0: a bare axis around one value reads as a big change.
    axes.set_ylim(bottom=0)
    axes.tick_params(axis="x", labelrotation=45)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def months_between(first: str, last: str) -> list[str]:
    start, end = (int(m[:4]) * 12 + int(m[5:7]) - 1 for m in (first, last))
    return [f"{n // 12:04d}-{n % 12 + 1:02d}" for n in range(start, end + 1)]


def weeks_touching(first: str, last: str) -> list[str]:
    """Every ISO week (YYYY-Www) with a day in the months, as the service answers them."""
    day = date(int(first[:4]), int(first[5:7]), 1)
    end_year, end_month = int(last[:4]), int(last[5:7])
    end = date(end_year + end_month // 12, end_month % 12 + 1, 1) - timedelta(days=1)
    day -= timedelta(days=day.weekday())
    weeks = []
    while day <= end:
        year, week, _ = day.isocalendar()
        weeks.append(f"{year:04d}-W{week:02d}")
        day += timedelta(days=7)
    return weeks


def read_all(fetch: Fetch, args: argparse.Namespace) -> list[dict]:
    """Every (experiment, territory) asked, with a progress bar on stderr while it reads."""
    experiments = [args.experiment, *([args.baseline] if args.baseline else [])]
    asks = [(e, t) for e in dict.fromkeys(experiments) for t in dict.fromkeys(args.territory)]
    rows: list[dict] = []
    with Progress(
        TextColumn("evaluate: {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:
        reading = progress.add_task("reading", total=len(asks))
        for experiment, territory in asks:
            progress.update(reading, description=f"{experiment}, territory {territory}")
            indicators = fetch(experiment, territory, args.from_month, args.to_month, args.period)
            rows.extend(rows_of(experiment, territory, indicators, args.period))
            progress.advance(reading)
    return rows


def cmd_evaluate(args: argparse.Namespace, fetch: Fetch | None = None) -> int:
    fetch = fetch or grpc_fetch(args.grpc, args.token_file)
    rows = read_all(fetch, args)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "indicators.csv", rows, args.period)
    write_parquet(args.out / "indicators.parquet", rows, args.period)
    spans = (weeks_touching if args.period == "week" else months_between)(
        args.from_month, args.to_month
    )
    asked = [r for r in rows if r["experiment"] == args.experiment]
    plotted = write_plots(args.out / "plots", asked, spans, args.period)
    if args.baseline and args.baseline != args.experiment:
        plotted += write_baseline_plots(
            args.out / "plots" / "baseline",
            rows,
            spans,
            args.experiment,
            args.baseline,
            args.period,
        )
    print(f"{len(rows)} rows in {args.out / 'indicators.csv'} and indicators.parquet")
    print(
        f"{plotted} plots in {args.out / 'plots'}"
        if plotted
        else "no plots (matplotlib not installed)"
    )
    return 0
