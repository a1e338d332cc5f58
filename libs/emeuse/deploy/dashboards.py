"""Grafana dashboards as code: the platform overview, one per axis, the partner gateway,
coordination and evaluation.

Plain dashboard JSON (schemaVersion 39) built from a few panel helpers, written to
deploy/grafana/ by scripts/dashboards.py, which also fails when a query names a metric the
services do not export (`make lint`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Panel = dict[str, Any]
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 12
HEIGHT = 8


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Chart:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    charts: tuple[Chart, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        panels: list[Panel] = []
        for index, chart in enumerate(self.charts):
            panels.append(
                {
                    "id": index + 1,
                    "type": "timeseries",
                    "title": chart.title,
                    "description": chart.description,
                    "datasource": DATASOURCE,
                    "gridPos": {
                        "h": HEIGHT,
                        "w": WIDTH,
                        "x": (index % 2) * WIDTH,
                        "y": (index // 2) * HEIGHT,
                    },
                    "fieldConfig": {"defaults": {"unit": chart.unit}, "overrides": []},
                    "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                    "targets": [
                        {
                            "refId": chr(ord("A") + n),
                            "datasource": DATASOURCE,
                            "expr": query.expr,
                            "legendFormat": query.legend,
                        }
                        for n, query in enumerate(chart.queries)
                    ],
                }
            )
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["emeuse"],
            "timezone": "browser",
            "schemaVersion": 39,
            "version": 1,
            "editable": False,
            "time": {"from": "now-6h", "to": "now"},
            "refresh": "30s",
            "templating": {
                "list": [
                    {
                        "name": "datasource",
                        "label": "Prometheus",
                        "type": "datasource",
                        "query": "prometheus",
                    }
                ]
            },
            "panels": panels,
        }

    def text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n"

    def queries(self) -> list[str]:
        return [query.expr for chart in self.charts for query in chart.queries]


def _rate(metric: str, by: str, window: str = "5m") -> str:
    return f"sum by ({by}) (rate({metric}[{window}]))"


def _quantile(
    q: float, histogram: str, by: str = "le", window: str = "15m", where: str = ""
) -> str:
    keep = "le" if by == "le" else f"le, {by}"
    return f"histogram_quantile({q}, sum by ({keep}) (rate({histogram}_bucket{where}[{window}])))"


def _service_charts(service: str) -> tuple[Chart, ...]:
    """What the platform measures of any service, for one service: its gRPC calls (rate,
    refusals, time), consumer lag, handling time and dead letters."""
    of = f'{{service="{service}"}}'
    refused = f'{{service="{service}", code=~"UNAUTHENTICATED|PERMISSION_DENIED|INVALID_ARGUMENT"}}'
    return (
        Chart(
            "gRPC calls per second, by method",
            (Query(_rate(f"emeuse_grpc_requests_total{of}", "method"), "{{method}}"),),
            "ops",
        ),
        Chart(
            "gRPC refusals per minute, by method and code",
            (
                Query(
                    f"sum by (method, code) (increase(emeuse_grpc_requests_total{refused}[5m]))"
                    " / 5",
                    "{{method}} {{code}}",
                ),
            ),
            description="Calls refused for their token (UNAUTHENTICATED), their role or "
            "territory (PERMISSION_DENIED) or their request (INVALID_ARGUMENT).",
        ),
        Chart(
            "gRPC call time, by method",
            (
                Query(
                    _quantile(0.5, "emeuse_grpc_request_seconds", "method", "5m", of),
                    "p50 {{method}}",
                ),
                Query(
                    _quantile(0.95, "emeuse_grpc_request_seconds", "method", "5m", of),
                    "p95 {{method}}",
                ),
            ),
            "s",
        ),
        Chart(
            "Consumer lag (records), by topic",
            (Query(f"sum by (topic) (emeuse_consumer_lag{of})", "{{topic}}"),),
        ),
        Chart(
            "Handling time p95, by topic",
            (Query(_quantile(0.95, "emeuse_handler_seconds", "topic", "5m", of), "{{topic}}"),),
            "s",
        ),
        Chart(
            "Dead letters per minute",
            (
                Query(
                    f"sum (increase(emeuse_events_dead_lettered_total{of}[5m])) / 5",
                    "dead letters",
                ),
            ),
        ),
    )


OVERVIEW = Dashboard(
    uid="emeuse-overview",
    title="e-Meuse: platform overview",
    description="Throughput, lag, dead letters, errors, gRPC and restarts of the services.",
    charts=(
        Chart(
            "Records read per second",
            (Query(_rate("emeuse_events_consumed_total", "service"), "{{service}}"),),
            "ops",
        ),
        Chart(
            "Events published per second",
            (Query(_rate("emeuse_events_produced_total", "service"), "{{service}}"),),
            "ops",
        ),
        Chart(
            "Consumer lag (records)",
            (Query("sum by (service) (emeuse_consumer_lag)", "{{service}}"),),
            description="The autoscaler adds an instance per 1000 records behind.",
        ),
        Chart(
            "Dead letters per minute",
            (
                Query(
                    "sum by (service) (increase(emeuse_events_dead_lettered_total[5m])) / 5",
                    "{{service}}",
                ),
            ),
        ),
        Chart(
            "Records set aside, by cause",
            (
                Query(
                    _rate("emeuse_events_failed_total", "service, cause"), "{{service}} {{cause}}"
                ),
            ),
            "ops",
        ),
        Chart(
            "Handling time p95",
            (Query(_quantile(0.95, "emeuse_handler_seconds", "service", "5m"), "{{service}}"),),
            "s",
        ),
        Chart(
            "gRPC calls per second, by code",
            (Query(_rate("emeuse_grpc_requests_total", "service, code"), "{{service}} {{code}}"),),
            "ops",
        ),
        Chart(
            "gRPC call time p95",
            (
                Query(
                    _quantile(0.95, "emeuse_grpc_request_seconds", "service", "5m"), "{{service}}"
                ),
            ),
            "s",
        ),
        Chart(
            "Transactions aborted per minute",
            (
                Query(
                    "sum by (service) (increase("
                    'emeuse_kernel_transactions_total{outcome="aborted"}[5m])) / 5',
                    "{{service}}",
                ),
            ),
        ),
        Chart(
            "Restarts (last hour)",
            (Query("sum by (job) (changes(process_start_time_seconds[1h]))", "{{job}}"),),
        ),
        Chart(
            "Memory per instance",
            (Query("process_resident_memory_bytes", "{{job}} {{instance}}"),),
            "bytes",
        ),
    ),
)

CHRONIC = Dashboard(
    uid="emeuse-chronic",
    title="e-Meuse: remote monitoring (alerts)",
    description="Readings checked, alerts raised, time to acknowledge, escalations.",
    charts=(
        Chart(
            "Readings per second, by outcome",
            (Query(_rate("emeuse_chronic_readings_total", "outcome"), "{{outcome}}"),),
            "ops",
        ),
        Chart(
            "Alerts raised per hour, by severity",
            (
                Query(
                    "sum by (severity) (increase(emeuse_chronic_alerts_raised_total[1h]))",
                    "{{severity}}",
                ),
            ),
        ),
        Chart(
            "Time to acknowledge an alert",
            (
                Query(_quantile(0.5, "emeuse_chronic_alert_time_to_acknowledge_seconds"), "p50"),
                Query(_quantile(0.9, "emeuse_chronic_alert_time_to_acknowledge_seconds"), "p90"),
            ),
            "s",
        ),
        Chart(
            "Escalations per hour, by step",
            (
                Query(
                    "sum by (step) (increase(emeuse_chronic_alert_escalations_total[1h]))",
                    "step {{step}}",
                ),
            ),
        ),
        Chart(
            "Monitoring gaps per day, by measure",
            (
                Query(
                    "sum by (loinc) (increase(emeuse_chronic_monitoring_gaps_total[1d]))",
                    "{{loinc}}",
                ),
            ),
        ),
        Chart(
            "Point-of-care result to alert p90",
            (
                Query(
                    _quantile(0.9, "emeuse_chronic_point_of_care_to_alert_seconds", "loinc", "1h"),
                    "{{loinc}}",
                ),
            ),
            "s",
        ),
    ),
)

ACCESS = Dashboard(
    uid="emeuse-access",
    title="e-Meuse: teleconsultation (bookings and waits)",
    description="Requests, time to a booking, the waiting line, slot use.",
    charts=(
        Chart(
            "Requests per hour, by outcome",
            (
                Query(
                    "sum by (outcome) (increase(emeuse_access_requests_total[1h]))",
                    "{{outcome}}",
                ),
            ),
        ),
        Chart(
            "Request to booking p90, by urgency",
            (
                Query(
                    _quantile(0.9, "emeuse_access_request_to_booking_seconds", "urgency", "1h"),
                    "{{urgency}}",
                ),
            ),
            "s",
        ),
        Chart(
            "Waiting requests, by territory and urgency",
            (
                Query(
                    "sum by (territory, urgency) (emeuse_access_waiting_requests)",
                    "{{territory}} {{urgency}}",
                ),
            ),
        ),
        Chart(
            "Requests past their booking delay",
            (
                Query(
                    "sum by (territory, urgency) (emeuse_access_unmet_requests)",
                    "{{territory}} {{urgency}}",
                ),
            ),
        ),
        Chart(
            "Slot utilisation, by territory",
            (Query("max by (territory) (emeuse_access_slot_utilisation)", "{{territory}}"),),
            "percentunit",
        ),
    ),
)

HOME = Dashboard(
    uid="emeuse-home",
    title="e-Meuse: home support (incidents and escalations)",
    description="Incidents, escalations to contacts and to the SAMU, visits, devices offline.",
    charts=(
        Chart(
            "Incidents per hour, by kind",
            (Query("sum by (kind) (increase(emeuse_home_incidents_total[1h]))", "{{kind}}"),),
        ),
        Chart(
            "Time to acknowledge an incident p90, by kind",
            (
                Query(
                    _quantile(0.9, "emeuse_home_incident_time_to_acknowledge_seconds", "kind"),
                    "{{kind}}",
                ),
            ),
            "s",
        ),
        Chart(
            "Escalations per hour, by step",
            (
                Query(
                    "sum by (step) (increase(emeuse_home_incident_escalations_total[1h]))",
                    "step {{step}}",
                ),
            ),
        ),
        Chart(
            "Escalations to the SAMU per day, by territory",
            (
                Query(
                    "sum by (territory) (increase(emeuse_home_emergency_escalations_total[1d]))",
                    "{{territory}}",
                ),
            ),
        ),
        Chart(
            "Devices offline, by territory",
            (Query("sum by (territory) (emeuse_home_devices_offline)", "{{territory}}"),),
        ),
        Chart(
            "Missed visits per day, by territory",
            (
                Query(
                    "sum by (territory) (increase(emeuse_home_visits_missed_total[1d]))",
                    "{{territory}}",
                ),
            ),
        ),
    ),
)

PREVENTION = Dashboard(
    uid="emeuse-prevention",
    title="e-Meuse: prevention (campaign delivery)",
    description="Messages by stage, campaign and territory; opt-outs; programme enrolments.",
    charts=(
        Chart(
            "Messages per hour, by stage",
            (
                Query(
                    "sum by (event) (increase(emeuse_prevention_messages_total[1h]))",
                    "{{event}}",
                ),
            ),
        ),
        Chart(
            "Delivered over sent, by campaign (1 day)",
            (
                Query(
                    "sum by (campaign) (increase("
                    'emeuse_prevention_messages_total{event="delivered"}[1d]))'
                    " / sum by (campaign) (increase("
                    'emeuse_prevention_messages_total{event="sent"}[1d]))',
                    "{{campaign}}",
                ),
            ),
            "percentunit",
        ),
        Chart(
            "Opt-outs per day, by scope",
            (
                Query(
                    "sum by (scope) (increase(emeuse_prevention_opt_outs_total[1d]))",
                    "{{scope}}",
                ),
            ),
        ),
        Chart(
            "Programme enrolments per day",
            (
                Query(
                    "sum by (programme) "
                    "(increase(emeuse_prevention_programme_enrolments_total[1d]))",
                    "{{programme}}",
                ),
            ),
        ),
    ),
)

GATEWAY = Dashboard(
    uid="emeuse-gateway",
    title="e-Meuse: partner gateway",
    description="Partner feeds, events withheld by consent, inbound admitted or refused.",
    charts=(
        Chart(
            "Forwarded to feeds per second, by partner",
            (Query(_rate("emeuse_gateway_events_forwarded_total", "partner"), "{{partner}}"),),
            "ops",
        ),
        Chart(
            "Withheld by consent per second, by partner",
            (Query(_rate("emeuse_gateway_events_withheld_total", "partner"), "{{partner}}"),),
            "ops",
        ),
        Chart(
            "Inbound per second, by partner and outcome",
            (
                Query(
                    _rate("emeuse_gateway_inbound_total", "partner, outcome"),
                    "{{partner}} {{outcome}}",
                ),
            ),
            "ops",
        ),
        Chart(
            "Consent change to applied p90",
            (Query(_quantile(0.9, "emeuse_gateway_consent_applied_seconds"), "p90"),),
            "s",
        ),
    ),
)

COORDINATION = Dashboard(
    uid="emeuse-coordination",
    title="e-Meuse: coordination (timelines and people at risk)",
    description="Coordinators' calls, refusals and call time; lag; timelines kept, open "
    "items and people at risk.",
    charts=(
        *_service_charts("coordination"),
        Chart(
            "Entries added per second, by axis",
            (Query(_rate("emeuse_coordination_timeline_entries_total", "axis"), "{{axis}}"),),
            "ops",
        ),
        Chart(
            "Events put on no timeline per minute, by reason",
            (
                Query(
                    "sum by (reason) (increase(emeuse_coordination_events_left_out_total[5m])) / 5",
                    "{{reason}}",
                ),
                Query(
                    "sum (increase(emeuse_coordination_entries_rekeyed_total[5m])) / 5",
                    "access events re-keyed",
                ),
            ),
        ),
        Chart(
            "Timelines kept",
            (Query("sum (emeuse_coordination_timelines_kept)", "timelines"),),
            description="On the partitions each instance holds, counted from its stored "
            "state when it opens them: a restart or a rebalance changes no total.",
        ),
        Chart(
            "Entries kept per timeline",
            (
                Query(
                    "sum (emeuse_coordination_timeline_entries_kept)"
                    " / sum (emeuse_coordination_timelines_kept)",
                    "entries",
                ),
            ),
            description="At most 50 per axis, 200 per person.",
        ),
        Chart(
            "Open items, by kind",
            (Query("sum by (kind) (emeuse_coordination_open_items)", "{{kind}}"),),
            description="Alerts, requests and incidents not closed, facts within their "
            "window: what the risk rules read.",
        ),
        Chart(
            "People at risk, by territory",
            (Query("sum by (territory) (emeuse_coordination_people_at_risk)", "{{territory}}"),),
        ),
    ),
)

EVALUATION = Dashboard(
    uid="emeuse-evaluation",
    title="e-Meuse: evaluation (indicators)",
    description="Events folded into the indicators; indicator calls, refusals and call time; lag.",
    charts=(
        *_service_charts("evaluation"),
        Chart(
            "Events folded per second, by topic",
            (Query(_rate("emeuse_evaluation_events_folded_total", "topic"), "{{topic}}"),),
            "ops",
        ),
    ),
)

DASHBOARDS = (OVERVIEW, CHRONIC, ACCESS, HOME, PREVENTION, GATEWAY, COORDINATION, EVALUATION)
