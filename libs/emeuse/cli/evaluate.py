"""`emeuse evaluate`: the indicators of one experiment, as CSV tables and PNG plots.

Asks the evaluation service (GetIndicators: small cells already withheld, no pseudonym)
for each territory named, per month or (--period week) per ISO week, then writes:
  indicators.csv       one row per territory, month (or week), indicator and breakdown
  plots/<name>.png     each total's trend per month (or week), one line per territory
                       (matplotlib, when installed; suppressed periods are gaps)
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc

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


def write_plots(
    directory: Path, rows: Sequence[dict], spans: Sequence[str], period: str = "month"
) -> int:
    """One PNG per total (no breakdown), a line per territory over the months or weeks
    `spans`; 0 when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    names = sorted({r["indicator"] for r in rows if not r["breakdown"]})
    for name in names:
        figure, axes = plt.subplots(figsize=(8, 4))
        for territory in sorted({r["territory"] for r in rows}):
            by_span = {
                r[period]: float(r["value"])
                for r in rows
                if r["indicator"] == name and r["territory"] == territory and not r["breakdown"]
                if r["value"] != ""
            }
            values = [by_span.get(span, float("nan")) for span in spans]
            axes.plot(spans, values, marker="o", label=f"territory {territory}")
        unit = next(r["unit"] for r in rows if r["indicator"] == name)
        axes.set_title(name)
        axes.set_ylabel(unit)
        axes.tick_params(axis="x", labelrotation=45)
        axes.legend()
        figure.tight_layout()
        figure.savefig(directory / f"{name}.png")
        plt.close(figure)
    return len(names)


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


def cmd_evaluate(args: argparse.Namespace, fetch: Fetch | None = None) -> int:
    fetch = fetch or grpc_fetch(args.grpc, args.token_file)
    rows: list[dict] = []
    territories = list(dict.fromkeys(args.territory))
    for n, territory in enumerate(territories, 1):
        print(f"evaluate: territory {territory} ({n}/{len(territories)})", file=sys.stderr)
        indicators = fetch(args.experiment, territory, args.from_month, args.to_month, args.period)
        rows.extend(rows_of(args.experiment, territory, indicators, args.period))
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "indicators.csv", rows, args.period)
    spans = (weeks_touching if args.period == "week" else months_between)(
        args.from_month, args.to_month
    )
    plotted = write_plots(args.out / "plots", rows, spans, args.period)
    print(f"{len(rows)} rows in {args.out / 'indicators.csv'}")
    print(
        f"{plotted} plots in {args.out / 'plots'}"
        if plotted
        else "no plots (matplotlib not installed)"
    )
    return 0
