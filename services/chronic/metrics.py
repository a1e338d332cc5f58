"""What the chronic service measures, beside the kernel's own metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from emeuse.chronic.v1.chronic_events_pb2 import AlertAcknowledged, AlertEscalated, AlertRaised

READINGS = Counter(
    "emeuse_chronic_readings_total",
    "Readings checked, by measure and outcome.",
    ["loinc", "outcome"],
)
NOT_MONITORED = Counter(
    "emeuse_chronic_readings_not_monitored_total",
    "Readings recorded for a measure the patient's care plan does not monitor (never judged), "
    "by measure.",
    ["loinc"],
)
ALERTS_RAISED = Counter(
    "emeuse_chronic_alerts_raised_total",
    "Alerts raised, by severity and rule.",
    ["severity", "rule"],
)
ALERT_ACTIONS = Counter(
    "emeuse_chronic_alert_actions_total",
    "Alert actions and timer steps handled, by outcome.",
    ["outcome"],
)
ESCALATIONS = Counter(
    "emeuse_chronic_alert_escalations_total",
    "Unacknowledged alerts passed to the next care-team member, by step.",
    ["step"],
)
ALERTS_AT_LAST_MEMBER = Counter(
    "emeuse_chronic_alerts_at_last_member_total",
    "Alerts passed, still unacknowledged, to the last member of their care team's chain: "
    "nobody is left to escalate to (EmeuseCriticalAlertUnanswered), by severity and territory.",
    ["severity", "territory"],
)
MONITORING_GAPS = Counter(
    "emeuse_chronic_monitoring_gaps_total",
    "Monitoring-gap alerts: a measure's readings stopped coming, by measure.",
    ["loinc"],
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "emeuse_chronic_alert_time_to_acknowledge_seconds",
    "Time from an alert to its acknowledgement by the care team.",
    buckets=(30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)
POINT_OF_CARE_TO_ALERT = Histogram(
    "emeuse_chronic_point_of_care_to_alert_seconds",
    "Point-of-care results (e.g. capillary INR): time from measurement to the prescriber alert.",
    ["loinc"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400),
)


def count(message: object) -> None:
    """Count a fact the service published."""
    if isinstance(message, AlertRaised):
        severity = "critical" if message.severity == 2 else "warning"
        ALERTS_RAISED.labels(severity, message.rule).inc()
        if message.rule == "monitoring.gap":
            MONITORING_GAPS.labels(message.loinc_code).inc()
    elif isinstance(message, AlertEscalated):
        ESCALATIONS.labels(str(message.step)).inc()
    elif isinstance(message, AlertAcknowledged):
        TIME_TO_ACKNOWLEDGE.observe(message.time_to_acknowledge.ToTimedelta().total_seconds())
