"""Time-based detectors: pure functions of the home's state (event times) and `now`.

Nothing arrives when nothing happens, so inactivity, night wandering, a silent device and
a missed visit are found by the service's timer, at the deadlines worked out from them.
Each returns the episode it found due, so one episode raises one incident.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.home.domain.home import (
    DoorEvent,
    DoorWatch,
    HomeConfig,
    HomeState,
    VisitState,
)
from services.home.domain.rhythm import Rhythm


def inactivity_since(
    rhythm: Rhythm, last_activity: datetime | None, watched_since: datetime, now: datetime
) -> datetime | None:
    """Start of the resident's inactivity if it is abnormal now: in the active hours, no
    activity since the latest of waking, the last activity and enrolment, for longer
    than the rhythm allows. None otherwise (quiet hours, recent activity)."""
    if rhythm.is_quiet(now):
        return None
    since = max(
        t for t in (watched_since, last_activity, rhythm.active_since(now)) if t is not None
    )
    return since if now - since >= rhythm.inactivity_alert_after else None


def door_watch(events: list[DoorEvent], rhythm: Rhythm) -> DoorWatch | None:
    """The door watch the events (in event-time order) leave open, if any.

    An opening in the quiet hours starts a watch; the next opening (the resident coming
    in) ends it; a closing is noted, so that movement indoors after it ends it too."""
    watch: DoorWatch | None = None
    for event in events:
        if event.what == "motion":
            if watch is not None and watch.closed_at is not None and event.at > watch.closed_at:
                watch = None
        elif watch is not None and event.at > watch.opened_at:
            if event.what == "open":
                watch = None
            else:
                watch = watch.model_copy(update={"closed_at": event.at})
        elif watch is None and event.what == "open" and rhythm.is_quiet(event.at):
            watch = DoorWatch(
                sensor_event_id=event.sensor_event_id, device_id=event.device_id, opened_at=event.at
            )
    return watch


def wandering_due(watch: DoorWatch | None, return_within: timedelta, now: datetime) -> bool:
    return watch is not None and now >= watch.opened_at + return_within


def temperature_side(celsius: float, low: float, high: float) -> str:
    """ "cold", "hot" or "" (in the comfortable range)."""
    return "cold" if celsius < low else "hot" if celsius > high else ""


def silent_devices(
    config: HomeConfig, state: HomeState, now: datetime
) -> list[tuple[str, datetime]]:
    """Installed devices silent for longer than the home allows, with since when."""
    offline_after = timedelta(seconds=config.thresholds.device_offline_after_s)
    silent = []
    for device_id in sorted(config.devices):
        seen = state.devices.get(device_id)
        since = (seen.last_seen_at if seen else None) or config.devices_added_at.get(
            device_id, config.enrolled_at
        )
        if now - since >= offline_after:
            silent.append((device_id, since))
    return silent


def missed_visits(visits: dict[str, VisitState], now: datetime) -> list[VisitState]:
    """Visits with no check-in by their planned start plus the allowed delay."""
    return sorted(
        (v for v in visits.values() if v.checked_in_at is None and v.missed_at <= now),
        key=lambda v: v.planned_start,
    )
