"""Grafana dashboards: committed as rendered, and every query names a metric the services
export (scripts/dashboards.py, in `make lint`)."""

import importlib.util
import json
from pathlib import Path

from emeuse.deploy.dashboards import DASHBOARDS, Chart, Dashboard, Query

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "dashboards.py"
spec = importlib.util.spec_from_file_location("dashboards_script", SCRIPT)
assert spec and spec.loader
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


def test_the_committed_dashboards_are_the_rendered_ones():
    for dashboard in DASHBOARDS:
        committed = (script.OUTPUT / f"{dashboard.uid}.json").read_text()
        assert committed == dashboard.text()
        assert json.loads(committed)["panels"], dashboard.uid


def test_every_query_names_only_exported_metrics():
    assert script.unknown_metrics(script.exported()) == []


def test_a_query_naming_a_metric_nobody_exports_is_reported(monkeypatch):
    typo = Dashboard(
        uid="typo",
        title="t",
        description="d",
        charts=(
            Chart(
                "lag",
                (Query('sum by (service) (emeuse_consumer_lagg{service="chronic"})', "x"),),
            ),
        ),
    )
    monkeypatch.setattr(script, "DASHBOARDS", (*DASHBOARDS, typo))
    assert script.unknown_metrics(script.exported()) == [
        'typo: emeuse_consumer_lagg in `sum by (service) (emeuse_consumer_lagg{service="chronic"})`'
    ]


def test_metric_names_are_told_apart_from_functions_labels_and_durations():
    expr = (
        "histogram_quantile(0.9, sum by (le, urgency) "
        '(rate(emeuse_access_request_to_booking_seconds_bucket{territory="55"}[1h])))'
        " / on (urgency) group_left up"
    )
    assert script.metrics_named(expr) == {"emeuse_access_request_to_booking_seconds_bucket", "up"}


def test_queries_are_valid_promql(monkeypatch):
    if script.shutil.which("promtool") is None:
        return  # make lint runs where promtool is installed (scripts/install-system.sh)
    assert script.syntax_faults() == ""
    broken = Dashboard(
        uid="broken", title="t", description="d", charts=(Chart("x", (Query("sum by (", "x"),)),)
    )
    monkeypatch.setattr(script, "DASHBOARDS", (broken,))
    assert "could not parse expression" in script.syntax_faults()


def test_the_home_dashboard_shows_devices_offline_per_territory():
    # A gauge per territory, like the SAMU escalations and missed visits beside it: a
    # territory's offline devices are its own line, not lost in a platform-wide sum.
    home = next(d for d in DASHBOARDS if d.uid == "emeuse-home")
    [chart] = [
        c for c in home.charts if any("emeuse_home_devices_offline" in q.expr for q in c.queries)
    ]
    [query] = chart.queries
    assert script.metrics_named(query.expr) == {"emeuse_home_devices_offline"}
    assert "sum by (territory)" in query.expr
    assert query.legend == "{{territory}}" and "territory" in chart.title
