"""Home use cases: plain functions, protobuf in and out, state passed in and returned.

Sensor events are judged by the time they happened (event time), so a late or reordered
report lands where it belongs; the same report twice, under one id or by one device at
one time, counts once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emeuse.home.v1.home_events_pb2 import (
    DoorState,
    SensorEventReported,
    VisitEnded,
    VisitPlanned,
    VisitStarted,
)
from emeuse.runtime.codec import InvalidEventError
from services.home.configuration import check_contact_id, check_device_id, check_event_id
from services.home.domain.detection import Incident, Sensor, incident_for, is_activity
from services.home.domain.detectors import door_watch, temperature_side
from services.home.domain.home import DoorEvent, HomeState, IncidentState, VisitState
from services.home.domain.reports import check_report, sensor_of
from services.home.incidents import (
    Fact,
    NewIncident,
    Outcome,
    clear,
    incident_id_for,
    raise_incident,
)

# A device clock this far ahead is wrong; its report would hide inactivity for hours.
CLOCK_SKEW = timedelta(minutes=5)
# Reports of one fall or panic (two detectors, a detector re-alerting while she is on the
# floor, a press and a re-press) join its incident while it is not resolved: during its
# escalation, and within this of its latest report (a sliding window, so a detector that
# re-alerts every 11 minutes stays one fall).
SAME_EPISODE = timedelta(minutes=30)
DEFAULT_MISSED_AFTER = timedelta(minutes=30)


def enrolled(state: HomeState) -> None:
    if state.config is None:
        raise InvalidEventError("home is not enrolled (EnrollHome first)")


def _event_time(at: datetime, now: datetime, what: str) -> datetime:
    if at > now + CLOCK_SKEW:
        raise InvalidEventError(f"{what} is in the future")
    return at


def record_sensor_event(event: SensorEventReported, *, state: HomeState, now: datetime) -> Outcome:
    """Record one sensor event in the resident's home and raise or clear what it calls for."""
    # Ids, never free text, before anything is logged or published.
    check_event_id(event.sensor_event_id, "sensor_event_id")
    check_device_id(event.device_id)
    sensor = sensor_of(event.kind)
    at = event.occurred_at.ToDatetime(tzinfo=UTC)
    # Event ids are each device maker's: unique per device. The same report resent under a
    # new id by the same device (same kind, time and door state) counts once too.
    sent = f"id|{event.device_id}|{event.sensor_event_id}"
    report = f"{event.device_id}|{event.kind}|{at.isoformat()}|{event.door_state}"
    if state.has_seen(sent) or state.has_seen(report):
        return Outcome(state, outcome="duplicate")
    enrolled(state)
    assert state.config is not None
    if event.device_id not in state.config.devices:
        # An installer's test device, another home's: it must not call anyone here.
        raise InvalidEventError("device_id is not installed in this home")
    _event_time(at, now, "occurred_at")
    check_report(event)
    immediate = incident_for(sensor, event.confidence)
    if immediate is not None and state.has_incident(
        incident_id_for(event.resident_pseudonym, immediate, event.sensor_event_id)
    ):
        return Outcome(state, outcome="duplicate")  # its incident exists: resent, forgotten
    state = state.changed()
    state.remember(sent, report, alarm=immediate is not None)
    state.sensor_events += 1
    resident = event.resident_pseudonym
    battery = event.battery_percent if sensor is Sensor.BATTERY or event.battery_percent else None
    state.seen_device(event.device_id, at)
    # The device speaks again: its silence is over, if what it says is from after the
    # silence began (a stale report held by a hub says nothing about now).
    silent = state.open_incident(Incident.DEVICE_OFFLINE.value, device_id=event.device_id)
    facts = clear(silent, resident, now) if silent and at > silent.occurred_at else []
    outcome = "recorded"
    if is_activity(sensor):
        state.active(at)
        inactive = state.open_incident(Incident.INACTIVITY.value)
        if inactive is not None and at > inactive.occurred_at:
            facts += clear(inactive, resident, now)
    if immediate is not None:
        facts += _immediate(state, immediate, event, at, now)
        outcome = (
            "incident"
            if any(f.spec.name.endswith("incident-raised.v1") for f in facts)
            else "joined"
        )
    elif sensor is Sensor.DOOR:
        opened = event.door_state == DoorState.DOOR_STATE_OPENED
        facts += _door(state, event, "open" if opened else "close", at, now)
    elif sensor in (Sensor.MOTION, Sensor.BED_EXIT):
        facts += _door(state, event, "motion", at, now)
    elif sensor is Sensor.ROOM_TEMPERATURE:
        facts += _temperature(state, event, at, now)
    if battery is not None:
        facts += _battery(state, event, battery, at, now)
    if outcome == "recorded" and facts:
        outcome = (
            "incident"
            if any(f.spec.name.endswith("incident-raised.v1") for f in facts)
            else "cleared"
        )
    return Outcome(state, facts, outcome)


def _immediate(
    state: HomeState, kind: Incident, event: SensorEventReported, at: datetime, now: datetime
) -> list[Fact]:
    # A second detector, a re-alert, the button pressed again: the same episode.
    joined = _episode_of(state, kind, at)
    if joined is not None:
        joined.sensor_event_ids.append(event.sensor_event_id)
        latest = joined.last_report_at or joined.occurred_at
        joined.last_report_at = max(latest, at)
        return []
    confidence = f" (confidence {event.confidence:.2f})" if kind is Incident.FALL else ""
    # Reported after she was seen moving about for longer than an episode lasts (a device
    # that kept it, a partner re-sending old reports): her contacts are told, not the SAMU.
    late = state.last_activity_at is not None and at < state.last_activity_at - SAME_EPISODE
    reason = (
        f"{kind.value}.detected.late{confidence}: activity since, emergency service not called"
        if late
        else f"{kind.value}.detected{confidence}"
    )
    new = NewIncident(
        kind,
        event.sensor_event_id,
        reason,
        at,
        (event.sensor_event_id,),
        device_id=event.device_id,
        emergency=not late,
    )
    return raise_incident(state, event.resident_pseudonym, new, now)


def _episode_of(state: HomeState, kind: Incident, at: datetime) -> IncidentState | None:
    """The unresolved incident of `kind` a report at `at` belongs to, if any: one whose
    escalation is still running at `at` (nobody answered yet, its next step not due), or
    one whose reports reach within SAME_EPISODE of `at`."""
    for incident in sorted(state.incidents.values(), key=lambda i: i.raised_at, reverse=True):
        if not incident.is_open or incident.kind != kind.value:
            continue
        latest = incident.last_report_at or incident.occurred_at
        due = incident.next_escalation_at
        if (
            due is not None and incident.occurred_at <= at <= due
        ) or incident.occurred_at - SAME_EPISODE <= at <= latest + SAME_EPISODE:
            return incident
    return None


def _door(
    state: HomeState, event: SensorEventReported, what: str, at: datetime, now: datetime
) -> list[Fact]:
    """Work the door watch out again from the door events and movements, by event time
    (so a return delivered before its opening still ends it). A watch that ended (she
    came back in) clears its wandering incident."""
    config = state.config
    assert config is not None
    events = state.add_door_event(
        DoorEvent(
            at=at, what=what, sensor_event_id=event.sensor_event_id, device_id=event.device_id
        )
    )
    before, state.door_watch = state.door_watch, door_watch(events, config.rhythm)
    after = state.door_watch
    if before is None or (after is not None and after.sensor_event_id == before.sensor_event_id):
        return []
    wandering = state.open_incident(Incident.NIGHT_WANDERING.value, device_id=before.device_id)
    if wandering is None or before.sensor_event_id not in wandering.sensor_event_ids:
        return []
    return clear(wandering, event.resident_pseudonym, now)


def _temperature(
    state: HomeState, event: SensorEventReported, at: datetime, now: datetime
) -> list[Fact]:
    config = state.config
    assert config is not None
    limits = config.thresholds
    side = temperature_side(event.temperature_celsius, limits.too_cold_below, limits.too_hot_above)
    run = state.add_temperature(side, at)
    facts: list[Fact] = []
    for other, kind in (("cold", Incident.TOO_COLD), ("hot", Incident.TOO_HOT)):
        if run.side != other:
            facts += clear(state.open_incident(kind.value), event.resident_pseudonym, now)
    sustained = timedelta(seconds=limits.temperature_sustained_for_s)
    if not run.side or run.raised or run.latest - run.since < sustained:
        return facts
    kind = Incident.TOO_COLD if run.side == "cold" else Incident.TOO_HOT
    episode = f"since {run.since.isoformat()}"
    run.raised = True
    if state.open_incident(kind.value) is not None:
        return facts  # the same condition, still open
    limit = limits.too_cold_below if kind is Incident.TOO_COLD else limits.too_hot_above
    minutes = (run.latest - run.since).total_seconds() / 60
    new = NewIncident(
        kind,
        episode,
        f"{kind.value}.sustained: {'below' if kind is Incident.TOO_COLD else 'above'} "
        f"{limit:g} °C for {minutes:.0f} min",
        run.since,
        (event.sensor_event_id,),
        device_id=event.device_id,
    )
    return [*facts, *raise_incident(state, event.resident_pseudonym, new, now)]


def _battery(
    state: HomeState, event: SensorEventReported, percent: float, at: datetime, now: datetime
) -> list[Fact]:
    """One low-battery incident per episode (from the first low reading to a good one),
    whoever closed it; a reading older than the latest changes nothing."""
    config = state.config
    assert config is not None
    device_id = event.device_id
    below = config.thresholds.low_battery_below
    if not state.battery(device_id, at, percent, below):
        return []
    low = state.open_incident(Incident.LOW_BATTERY.value, device_id=device_id)
    since = state.devices[device_id].battery_low_since
    if since is None:
        return clear(low, event.resident_pseudonym, now)
    if low is not None:
        return []
    new = NewIncident(
        Incident.LOW_BATTERY,
        f"{device_id} low since {since.isoformat()}",
        f"low_battery: {percent:.0f} % (below {below:g} %)",
        since,
        (event.sensor_event_id,),
        device_id=device_id,
    )
    return raise_incident(state, event.resident_pseudonym, new, now)


def plan_visit(visit: VisitPlanned, *, state: HomeState, now: datetime) -> Outcome:
    """Plan a home-aide visit; planning the same visit again changes nothing."""
    check_contact_id(visit.visit_id, "visit_id")
    key = f"visit-planned|{visit.visit_id}"
    if state.has_seen(key):
        return Outcome(state, outcome="duplicate")
    enrolled(state)
    assert state.config is not None
    if state.config.aide_service is None:
        raise InvalidEventError("home has no aide service to tell of a missed visit")
    check_contact_id(visit.aide_id, "aide_id")
    if visit.visit_id in state.visits:
        raise InvalidEventError("visit_id is already planned")
    duration = visit.planned_duration.ToTimedelta()
    if duration <= timedelta(0):
        raise InvalidEventError("planned_duration must be positive")
    missed_after = visit.missed_after.ToTimedelta() or DEFAULT_MISSED_AFTER
    if missed_after <= timedelta(0):
        raise InvalidEventError("missed_after must be positive")
    state = state.changed()
    state.remember(key)
    state.add_visit(
        VisitState(
            visit_id=visit.visit_id,
            aide_id=visit.aide_id,
            planned_start=visit.planned_start.ToDatetime(tzinfo=UTC),
            planned_duration_s=duration.total_seconds(),
            missed_after_s=missed_after.total_seconds(),
        )
    )
    return Outcome(state, outcome="planned")


def check_in(event: VisitStarted, *, state: HomeState, now: datetime) -> Outcome:
    """The aide arrived: the visit starts, its lateness is measured, and a missed-visit
    incident nobody took charge of yet is cleared."""
    enrolled(state)
    check_contact_id(event.visit_id, "visit_id")
    visit = state.visits.get(event.visit_id)
    if visit is None:
        raise InvalidEventError("no visit with this visit_id is planned for this home")
    if visit.checked_in_at is not None:
        return Outcome(state, outcome="duplicate")
    check_contact_id(event.aide_id, "aide_id")
    at = _event_time(event.checked_in_at.ToDatetime(tzinfo=UTC), now, "checked_in_at")
    state = state.changed()
    visit = state.visits[event.visit_id]
    visit.checked_in_at, visit.checked_in_by = at, event.aide_id
    facts = clear(state.incidents.get(visit.incident_id), event.resident_pseudonym, now)
    return Outcome(state, facts, "late" if visit.incident_id else "checked_in")


def check_out(event: VisitEnded, *, state: HomeState, now: datetime) -> Outcome:
    """The aide left: the visit ends and its duration is known."""
    enrolled(state)
    check_contact_id(event.visit_id, "visit_id")
    visit = state.visits.get(event.visit_id)
    if visit is None:
        raise InvalidEventError("no visit with this visit_id is planned for this home")
    if visit.checked_out_at is not None:
        return Outcome(state, outcome="duplicate")
    if visit.checked_in_at is None:
        raise InvalidEventError("the visit was never checked in")
    at = _event_time(event.checked_out_at.ToDatetime(tzinfo=UTC), now, "checked_out_at")
    if at < visit.checked_in_at:
        raise InvalidEventError("checked_out_at is before the check-in")
    state = state.changed()
    state.visits[event.visit_id].checked_out_at = at
    return Outcome(state, outcome="checked_out")
