#!/usr/bin/env python3
"""Write the Grafana dashboards to deploy/grafana/ (`make dashboards`); with --check, fail
when the committed files differ or a query names a metric the services do not export
(`make lint`). Exported = what the services' metric modules register, read from the
prometheus_client registry after importing them (and the process metrics it adds)."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import prometheus_client

from emeuse.deploy.dashboards import DASHBOARDS

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "deploy" / "grafana"
METRIC_MODULES = (
    "emeuse.runtime.metrics",
    "emeuse.kernel.metrics",
    *(
        f"services.{service}.metrics"
        for service in (
            "prevention",
            "chronic",
            "access",
            "home",
            "gateway",
            "coordination",
            "evaluation",
        )
    ),
)
# Series every sample name of a family gets, by family type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
}
# Series Prometheus itself adds to every target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {
    "by",
    "without",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
}


def exported() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names = set(SCRAPE_SERIES)
    for family in prometheus_client.REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def metrics_named(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, groupings, durations,
    strings and functions left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def unknown_metrics(known: set[str]) -> list[str]:
    return [
        f"{dashboard.uid}: {name} in `{expr}`"
        for dashboard in DASHBOARDS
        for expr in dashboard.queries()
        for name in sorted(metrics_named(expr) - known)
    ]


def syntax_faults() -> str:
    """promtool's complaints about the queries' PromQL (as recording rules), "" when none or
    when promtool is not installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return ""
    exprs = [expr for dashboard in DASHBOARDS for expr in dashboard.queries()]
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as file:
        json.dump(rules, file)  # JSON is YAML
        file.flush()
        checked = subprocess.run(
            [promtool, "check", "rules", file.name], capture_output=True, text=True, check=False
        )
    return "" if checked.returncode == 0 else checked.stdout + checked.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    unknown = unknown_metrics(exported())
    if unknown:
        print("dashboards query metrics no service exports:", *unknown, sep="\n  ", file=sys.stderr)
        return 1
    faults = syntax_faults()
    if faults:
        print(f"dashboards: a query is not valid PromQL:\n{faults}", file=sys.stderr)
        return 1
    files = {OUTPUT / f"{dashboard.uid}.json": dashboard.text() for dashboard in DASHBOARDS}
    if args.check:
        stale = [
            path.name
            for path, text in files.items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text
        ]
        extra = sorted(p.name for p in OUTPUT.glob("*.json") if p not in files)
        if stale or extra:
            print(
                f"deploy/grafana differs ({', '.join(stale + extra)}): "
                "run 'make dashboards' and commit",
                file=sys.stderr,
            )
            return 1
        print(f"dashboards: {len(files)} up to date, queries valid and naming exported metrics")
        return 0
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for stale_file in OUTPUT.glob("*.json"):
        if stale_file not in files:
            stale_file.unlink()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} dashboards to {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
