"""What the home service measures, beside the kernel's own metrics."""

from __future__ import annotations

from functools import partial

from prometheus_client import Counter, Gauge, Histogram

from emeuse.home.v1.home_events_pb2 import (
    ContactRole,
    IncidentAcknowledged,
    IncidentEscalated,
    IncidentKind,
    IncidentRaised,
    IncidentResolved,
)
from emeuse.kernel.sums import PartitionSums
from services.home import figures
from services.home.domain.home import HomeState

SENSOR_EVENTS = Counter(
    "emeuse_home_sensor_events_total",
    "Sensor events handled, by kind and outcome.",
    ["kind", "outcome"],
)
INCIDENTS = Counter(
    "emeuse_home_incidents_total",
    "Incidents raised, by kind and territory.",
    ["kind", "territory"],
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "emeuse_home_incident_time_to_acknowledge_seconds",
    "Time from an incident to its acknowledgement by a contact, by kind.",
    ["kind"],
    buckets=(15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
)
ESCALATION_DEPTH = Histogram(
    "emeuse_home_incident_escalation_depth",
    "Escalation step an incident reached before a contact answered (or it closed), by kind.",
    ["kind"],
    buckets=(0, 1, 2, 3, 4, 5, 6, 8),
)
ESCALATIONS = Counter(
    "emeuse_home_incident_escalations_total",
    "Unacknowledged incidents passed to the next contact, by kind and step.",
    ["kind", "step"],
)
EMERGENCY_ESCALATIONS = Counter(
    "emeuse_home_emergency_escalations_total",
    "Incidents passed to the emergency service (SAMU, 15), by kind and territory.",
    ["kind", "territory"],
)
DEVICES_OFFLINE = Gauge(
    "emeuse_home_devices_offline",
    "Devices with an open offline incident in the homes this instance holds, by territory "
    "(sum instances).",
    ["territory"],
)
MISSED_VISITS = Counter(
    "emeuse_home_visits_missed_total",
    "Home-aide visits with no check-in in time, by territory.",
    ["territory"],
)
VISIT_DURATION = Histogram(
    "emeuse_home_visit_duration_seconds",
    "Home-aide visits: time from check-in to check-out.",
    buckets=(300, 600, 900, 1800, 2700, 3600, 5400, 7200, 10800),
)
VISIT_LATENESS = Histogram(
    "emeuse_home_visit_lateness_seconds",
    "Home-aide visits: check-in time after the planned start (0 when on time).",
    buckets=(0, 60, 300, 600, 900, 1800, 3600, 7200),
)
ACTIONS = Counter(
    "emeuse_home_incident_actions_total",
    "Incident actions and timer steps handled, by outcome.",
    ["outcome"],
)


# The gauge's figures per partition held: counted from the stored homes when a partition is
# opened here (processing.PROCESSOR's partition hook), then changed as batches commit.
HELD = PartitionSums()


def watch(territories: tuple[str, ...]) -> None:
    """Have the gauge read the figures of the partitions held."""
    for territory in territories:
        DEVICES_OFFLINE.labels(territory).set_function(
            partial(HELD.value, figures.offline(territory))
        )


def _kind(kind: IncidentKind.ValueType) -> str:
    return IncidentKind.Name(kind).removeprefix("INCIDENT_KIND_").lower()


def count(message: object, territory: str, state: HomeState) -> None:
    """Count a fact the service published."""
    if isinstance(message, IncidentRaised):
        INCIDENTS.labels(_kind(message.kind), territory).inc()
        if message.kind == IncidentKind.INCIDENT_KIND_VISIT_MISSED:
            MISSED_VISITS.labels(territory).inc()
    elif isinstance(message, IncidentEscalated):
        ESCALATIONS.labels(_kind(message.kind), str(message.notified.step)).inc()
        if message.notified.role == ContactRole.CONTACT_ROLE_EMERGENCY_SERVICE:
            EMERGENCY_ESCALATIONS.labels(_kind(message.kind), territory).inc()
    elif isinstance(message, IncidentAcknowledged):
        kind = _kind(message.kind)
        TIME_TO_ACKNOWLEDGE.labels(kind).observe(
            message.time_to_acknowledge.ToTimedelta().total_seconds()
        )
        ESCALATION_DEPTH.labels(kind).observe(message.step)
    elif isinstance(message, IncidentResolved):
        incident = state.incidents.get(message.incident_id)
        if incident is not None and incident.acknowledged_at is None:
            ESCALATION_DEPTH.labels(_kind(message.kind)).observe(incident.step)
