"""What the home service measures, beside the kernel's own metrics."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from emeuse.home.v1.home_events_pb2 import (
    ContactRole,
    IncidentAcknowledged,
    IncidentEscalated,
    IncidentKind,
    IncidentRaised,
    IncidentResolved,
)
from services.home.domain.detection import Incident
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
    "Devices with an open offline incident in the homes this instance holds (sum instances).",
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


class OfflineDevices:
    """Devices with an open offline incident, per home, as each home's state is stored.

    The kernel keeps no gauge of state, and counting over every home at each scrape would
    read the whole store: each home's count is noted when its state is stored (a batch
    that aborts is handled again and notes the same), and the gauge sums the homes of the
    partitions this instance holds now. A home is counted from its first change after the
    instance started."""

    def __init__(self) -> None:
        self._by_home: dict[str, tuple[int, int]] = {}

    def note(self, resident: str, partition: int, state: HomeState) -> None:
        count = sum(
            1
            for i in state.incidents.values()
            if i.is_open and i.kind == Incident.DEVICE_OFFLINE.value
        )
        if count:
            self._by_home[resident] = (partition, count)
        else:
            self._by_home.pop(resident, None)

    def held(self, partitions: Callable[[], set[int]]) -> float:
        held = partitions()
        # A copy: the scrape runs on the metrics server's thread.
        return float(sum(n for p, n in self._by_home.copy().values() if p in held))


OFFLINE = OfflineDevices()


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
