"""A resident's home, kept in the `resident_to_home` table: its configuration, what the
sensors said (by event time), its incidents and visits, and the ids already seen.

Bounded, so one home's state stays small whatever its devices do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from services.home.domain.rhythm import Rhythm

# Ids of routine reports (heartbeats, motion, temperatures...), and apart, so that routine
# reports never push them out, ids of falls and panics, whose re-sending must never call
# anyone again.
RECENT_IDS_KEPT = 300
ALARM_IDS_KEPT = 200
CLOSED_INCIDENTS_KEPT = 50
# Beyond this many open incidents, the oldest one a contact took (or whose chain ended)
# is closed as EXPIRED: a home nobody resolves incidents for stays bounded.
OPEN_INCIDENTS_KEPT = 50
INCIDENT_IDS_KEPT = 200
VISITS_KEPT = 60
DOOR_EVENTS_KEPT = 100
DOOR_HORIZON = timedelta(hours=12)
FALL_WINDOW = timedelta(days=30)

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
# ContactRole numbers of the protobuf enum that the rules need.
ROLE_HOME_AIDE_SERVICE, ROLE_DEVICE_PROVIDER, ROLE_EMERGENCY_SERVICE = 3, 6, 7


class Contact(BaseModel):
    """Someone an incident can reach, with the time they have to acknowledge."""

    contact_id: str
    role: int
    acknowledge_within_s: float


class Thresholds(BaseModel):
    night_return_within_s: float = 15 * 60
    too_cold_below: float = 17.0
    too_hot_above: float = 28.0
    temperature_sustained_for_s: float = 3600
    device_offline_after_s: float = 3600
    low_battery_below: float = 15.0


class HomeConfig(BaseModel):
    version: int
    territory: str
    # The experiment the home was enrolled in (its enrolment's envelope): every event about
    # the home, its timers' included, is published in it.
    experiment: str = ""
    gir_level: int
    # device_id -> DeviceKind number
    devices: dict[str, int]
    contacts: list[Contact]
    device_provider: Contact
    aide_service: Contact | None = None
    rhythm: Rhythm = Field(default_factory=Rhythm)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    enrolled_at: datetime
    # When each device was added: a device never heard from is offline from then.
    devices_added_at: dict[str, datetime] = Field(default_factory=dict)
    # Id of the HomeConfigured event in force: the same configuration asked again (a lost
    # answer) is answered with it, nothing published.
    configured_by: str = ""


class DeviceState(BaseModel):
    last_seen_at: datetime | None = None
    battery_percent: float | None = None
    # Event time of the latest battery reading: an older one is ignored.
    battery_at: datetime | None = None
    # Since when the battery is low (None when it is not): the low-battery episode.
    battery_low_since: datetime | None = None


class DoorEvent(BaseModel):
    """A door opening or closing, or movement indoors (which matters after a closing)."""

    at: datetime
    what: str  # "open", "close" or "motion"
    sensor_event_id: str = ""
    device_id: str = ""


class DoorWatch(BaseModel):
    """An outer door opened in the quiet hours: waiting for the resident to come back."""

    sensor_event_id: str
    device_id: str
    opened_at: datetime
    closed_at: datetime | None = None


class TemperatureRun(BaseModel):
    """The home's temperature readings since the latest change of side, by event time:
    a few fields whatever the thermometer's cadence (one reading a minute is common)."""

    side: str  # "cold", "hot" or "" (in range)
    since: datetime  # the run's first reading
    latest: datetime  # its latest reading
    # The latest reading on another side before the run: a late reading older than this
    # does not belong to the run.
    before: datetime | None = None
    # The run raised its incident: one incident per run, whoever closed it.
    raised: bool = False

    def add(self, side: str, at: datetime) -> TemperatureRun:
        """The run after a reading on `side` at `at` (late ones included)."""
        if at >= self.latest:
            if side == self.side:
                return self.model_copy(update={"latest": at})
            return TemperatureRun(side=side, since=at, latest=at, before=self.latest)
        if side == self.side:
            if at < self.since and (self.before is None or at > self.before):
                return self.model_copy(update={"since": at})
            return self
        if at > self.since:
            # A late reading on the other side cuts the run: it starts again after it.
            return self.model_copy(update={"since": at, "before": at, "raised": False})
        if self.before is None or at > self.before:
            return self.model_copy(update={"before": at})
        return self


class Step(BaseModel):
    """One step of an incident's escalation chain."""

    contact_id: str
    role: int
    acknowledge_within_s: float


class IncidentState(BaseModel):
    incident_id: str
    kind: str
    # What makes two detections one episode (a door opening, a device's silence, a visit).
    episode: str
    reason: str
    territory: str
    status: str = OPEN
    occurred_at: datetime
    raised_at: datetime
    chain: list[Step]
    # chain[: step + 1] have been told.
    step: int = 0
    next_escalation_at: datetime | None = None
    acknowledged_by: str = ""
    acknowledged_at: datetime | None = None
    outcome: int = 0
    injury: bool = False
    resolved_by: str = ""
    resolved_at: datetime | None = None
    sensor_event_ids: list[str] = Field(default_factory=list)
    # Event time of the latest report joined to it (falls and panics): the episode goes on
    # while reports keep coming.
    last_report_at: datetime | None = None
    device_id: str = ""
    visit_id: str = ""

    @property
    def is_open(self) -> bool:
        return self.status != RESOLVED

    @property
    def notified(self) -> list[Step]:
        return self.chain[: self.step + 1]

    @property
    def chain_exhausted(self) -> bool:
        """Open, and the chain's last step was told: nobody further will be."""
        return self.status == OPEN and self.step + 1 >= len(self.chain)

    @property
    def with_samu(self) -> bool:
        """The SAMU was told (it ends the chain of falls and panics)."""
        return any(step.role == ROLE_EMERGENCY_SERVICE for step in self.notified)

    def in_chain(self, contact_id: str) -> bool:
        return any(step.contact_id == contact_id for step in self.chain)


class VisitState(BaseModel):
    visit_id: str
    aide_id: str
    planned_start: datetime
    planned_duration_s: float
    missed_after_s: float
    checked_in_at: datetime | None = None
    checked_in_by: str = ""
    checked_out_at: datetime | None = None
    incident_id: str = ""

    @property
    def missed_at(self) -> datetime:
        return self.planned_start + timedelta(seconds=self.missed_after_s)

    @property
    def lateness(self) -> timedelta:
        if self.checked_in_at is None:
            return timedelta(0)
        return max(self.checked_in_at - self.planned_start, timedelta(0))

    @property
    def duration(self) -> timedelta | None:
        if self.checked_in_at is None or self.checked_out_at is None:
            return None
        return self.checked_out_at - self.checked_in_at


class HomeState(BaseModel):
    config: HomeConfig | None = None
    # The configuration in force as sent (proto3 JSON), for GetHomeStatus.
    configured: dict[str, Any] = Field(default_factory=dict)
    last_activity_at: datetime | None = None
    sensor_events: int = 0
    devices: dict[str, DeviceState] = Field(default_factory=dict)
    door_watch: DoorWatch | None = None
    # Door events and movement indoors by event time, from which the watch is worked out
    # again at each one (a return delivered before the opening still ends it).
    door_events: list[DoorEvent] = Field(default_factory=list)
    temperature: TemperatureRun | None = None
    # Event times of the resident's falls (one per fall incident), last 30 days.
    falls: list[datetime] = Field(default_factory=list)
    incidents: dict[str, IncidentState] = Field(default_factory=dict)
    incident_ids: list[str] = Field(default_factory=list)
    visits: dict[str, VisitState] = Field(default_factory=dict)
    seen: list[str] = Field(default_factory=list)
    seen_alarms: list[str] = Field(default_factory=list)

    def changed(self) -> HomeState:
        """A copy to change, leaving this one as it was."""
        return type(self).model_validate(self.model_dump())

    def has_seen(self, key: str) -> bool:
        return key in self.seen or key in self.seen_alarms

    def remember(self, *keys: str, alarm: bool = False) -> None:
        if alarm:
            self.seen_alarms = [*self.seen_alarms, *keys][-ALARM_IDS_KEPT:]
        else:
            self.seen = [*self.seen, *keys][-RECENT_IDS_KEPT:]

    def has_incident(self, incident_id: str) -> bool:
        """Whether the home ever had this incident (among those it still knows of)."""
        return incident_id in self.incidents or incident_id in self.incident_ids

    def active(self, at: datetime) -> None:
        """Activity at `at` (event time); the last activity only moves forward."""
        if self.last_activity_at is None or at > self.last_activity_at:
            self.last_activity_at = at

    def seen_device(self, device_id: str, at: datetime) -> DeviceState:
        device = self.devices.setdefault(device_id, DeviceState())
        if device.last_seen_at is None or at >= device.last_seen_at:
            device.last_seen_at = at
        return device

    def battery(self, device_id: str, at: datetime, percent: float, low_below: float) -> bool:
        """Record a battery reading; False (and nothing changes) when it is older than the
        latest. The low episode starts at the first low reading and ends at a good one."""
        device = self.devices.setdefault(device_id, DeviceState())
        if device.battery_at is not None and at < device.battery_at:
            return False
        device.battery_percent, device.battery_at = percent, at
        if percent >= low_below:
            device.battery_low_since = None
        elif device.battery_low_since is None:
            device.battery_low_since = at
        return True

    def add_door_event(self, event: DoorEvent) -> list[DoorEvent]:
        """Keep the event in event-time order; bounded: a run of movements keeps its first
        and last (all the watch needs), and only DOOR_EVENTS_KEPT within DOOR_HORIZON of
        the latest are kept, never those from the current watch's opening on."""
        events = sorted([*self.door_events, event], key=lambda e: e.at)
        events = [
            e
            for i, e in enumerate(events)
            if not (
                e.what == "motion"
                and 0 < i < len(events) - 1
                and events[i - 1].what == "motion"
                and events[i + 1].what == "motion"
            )
        ]
        keep_from = events[-1].at - DOOR_HORIZON
        if self.door_watch is not None:
            keep_from = min(keep_from, self.door_watch.opened_at)
        events = [e for e in events if e.at >= keep_from]
        self.door_events = events[-DOOR_EVENTS_KEPT:]
        return self.door_events

    def add_temperature(self, side: str, at: datetime) -> TemperatureRun:
        run = self.temperature
        self.temperature = (
            TemperatureRun(side=side, since=at, latest=at) if run is None else run.add(side, at)
        )
        return self.temperature

    def fell(self, at: datetime) -> int:
        """Record a fall at `at`; the falls in the 30 days up to it, this one included."""
        self.falls = sorted([*self.falls, at])
        latest = self.falls[-1]
        self.falls = [f for f in self.falls if f > latest - FALL_WINDOW]
        return sum(1 for f in self.falls if at - FALL_WINDOW < f <= at)

    def open_incident(
        self, kind: str, *, device_id: str | None = None, visit_id: str | None = None
    ) -> IncidentState | None:
        """The open incident of `kind` (for that device or visit when given), if any."""
        return next(
            (
                i
                for i in self.incidents.values()
                if i.is_open
                and i.kind == kind
                and device_id in (None, i.device_id)
                and visit_id in (None, i.visit_id)
            ),
            None,
        )

    def add_incident(self, incident: IncidentState) -> None:
        self.incidents[incident.incident_id] = incident
        self.incident_ids = [*self.incident_ids, incident.incident_id][-INCIDENT_IDS_KEPT:]
        closed = sorted(
            (i for i in self.incidents.values() if not i.is_open), key=lambda i: i.raised_at
        )
        for old in closed[:-CLOSED_INCIDENTS_KEPT]:
            del self.incidents[old.incident_id]

    def add_visit(self, visit: VisitState) -> None:
        """Keep the visit; the oldest planned ones go first beyond VISITS_KEPT."""
        self.visits[visit.visit_id] = visit
        by_start = sorted(self.visits.values(), key=lambda v: v.planned_start)
        for old in by_start[:-VISITS_KEPT]:
            del self.visits[old.visit_id]

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> HomeState:
        return cls.model_validate(data or {})
