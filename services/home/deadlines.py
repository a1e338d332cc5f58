"""When a home next needs its timer: the earliest escalation step or time-based detection.

The kernel asks this whenever the home's state changes and fires the home's timer at the
moment it gives (incidents.due_actions then finds the steps due). Every moment given here
is one at which due_actions finds a step: a moment at which nothing is due would make the
kernel fire again and again for nothing. A detection whose episode already had its
incident, or whose kind has an incident still open, gives no moment: the change that
closes that incident asks again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.home.domain.detection import Incident
from services.home.domain.home import OPEN, HomeState
from services.home.domain.rhythm import LOCAL, Rhythm
from services.home.incidents import detections_due

# Inactivity is looked for in this many active periods from now: the current (or next)
# one, and the following ones when an earlier episode already had its incident.
ACTIVE_PERIODS = 3


def next_step_at(state: HomeState, now: datetime) -> datetime | None:
    """The home's next deadline (possibly past: then it is due now), or None."""
    config = state.config
    if config is None:
        return None
    first = min(
        (
            i.next_escalation_at
            for i in state.incidents.values()
            if i.status == OPEN and i.next_escalation_at is not None
        ),
        default=None,
    )
    # Each candidate is checked only when it is earlier than the earliest found so far.
    inactive = _inactivity_at(state, config.rhythm, config.enrolled_at, now, first)
    if inactive is not None:
        first = inactive
    # Only a detection due then counts: an episode that had its incident is not due again.
    for moment in sorted({max(m, now) for m in _detection_moments(state)}):
        if first is not None and moment >= first:
            break
        if _detects(state, moment):
            first = moment
            break
    return None if first is None else first.astimezone(UTC)


def _detection_moments(state: HomeState) -> list[datetime]:
    """When a door watch, a device's silence or a visit with no check-in becomes due."""
    config = state.config
    assert config is not None
    moments = [v.missed_at for v in state.visits.values() if v.checked_in_at is None]
    if state.door_watch is not None:
        within = timedelta(seconds=config.thresholds.night_return_within_s)
        moments.append(state.door_watch.opened_at + within)
    offline_after = timedelta(seconds=config.thresholds.device_offline_after_s)
    for device_id in config.devices:
        seen = state.devices.get(device_id)
        since = (seen.last_seen_at if seen else None) or config.devices_added_at.get(
            device_id, config.enrolled_at
        )
        moments.append(since + offline_after)
    return moments


def _detects(state: HomeState, at: datetime, kind: Incident | None = None) -> bool:
    return any(kind in (None, new.kind) for new, _ in detections_due(state, at))


def _inactivity_at(
    state: HomeState,
    rhythm: Rhythm,
    enrolled_at: datetime,
    now: datetime,
    before: datetime | None,
) -> datetime | None:
    """When inactivity is next abnormal with no new activity: in the active period now (or
    the next one), `inactivity_alert_after` past the latest of waking, the last activity and
    enrolment, if that is still before bedtime; else in a following active period. None
    when that is not before `before` (or never)."""
    start = now
    for _ in range(ACTIVE_PERIODS):
        if rhythm.is_quiet(start):
            start = _next_waking(rhythm, start)
        woke = rhythm.active_since(start)
        since = max(t for t in (enrolled_at, state.last_activity_at, woke) if t is not None)
        # In UTC: a wall-clock sum across a change of time would be an hour off.
        moment = max(since.astimezone(UTC) + rhythm.inactivity_alert_after, start)
        if before is not None and moment >= before:
            return None
        if _detects(state, moment, Incident.INACTIVITY):
            return moment
        start = _next_waking(rhythm, start)
    return None


def _next_waking(rhythm: Rhythm, after: datetime) -> datetime:
    local = after.astimezone(LOCAL)
    woke = datetime.combine(local.date(), rhythm.wakes_at, tzinfo=LOCAL)
    if woke <= local:
        woke = datetime.combine(local.date() + timedelta(days=1), rhythm.wakes_at, tzinfo=LOCAL)
    return woke.astimezone(UTC)
