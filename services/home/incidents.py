"""Incident lifecycle: raise (one per episode), escalate down the chain, acknowledge,
resolve, clear; and the timers that find steps and time-based detections due.

A home's incidents have a single writer (its partition's task): sensor events, visits and
contacts' actions arrive as events on the resident's key, and the home's timer takes the
steps due in the same partition. Deadlines live in the home's state (table and
changelog), never in memory: after a restart or a rebalance the instance that owns the
home finds them due again (deadlines.py) and takes the step in a transaction with the
state that records it; its id derives from the incident and the step (or, for a
detection, from the episode).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.protobuf.message import Message

from emeuse.home.v1.home_events_pb2 import (
    IncidentAcknowledged,
    IncidentAction,
    IncidentActionRequested,
    IncidentEscalated,
    IncidentKind,
    IncidentOutcome,
    IncidentRaised,
    IncidentResolved,
    NotifiedContact,
)
from emeuse.registry import (
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_ESCALATED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    TopicSpec,
)
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import timestamp
from services.home.domain.detection import EMERGENCIES, TECHNICAL, Incident
from services.home.domain.detectors import (
    inactivity_since,
    missed_visits,
    silent_devices,
    wandering_due,
)
from services.home.domain.home import (
    ACKNOWLEDGED,
    OPEN,
    OPEN_INCIDENTS_KEPT,
    RESOLVED,
    ROLE_EMERGENCY_SERVICE,
    HomeConfig,
    HomeState,
    IncidentState,
    Step,
)

INCIDENT_NAMESPACE = uuid.UUID("4b8e2f61-7d3a-4e0c-8f55-a1d9c3e50055")
# Who resolves an incident whose condition ended before anyone took charge.
SERVICE = "emeuse/home"
KIND = {
    Incident.FALL: IncidentKind.INCIDENT_KIND_FALL,
    Incident.PANIC: IncidentKind.INCIDENT_KIND_PANIC,
    Incident.INACTIVITY: IncidentKind.INCIDENT_KIND_INACTIVITY,
    Incident.NIGHT_WANDERING: IncidentKind.INCIDENT_KIND_NIGHT_WANDERING,
    Incident.TOO_COLD: IncidentKind.INCIDENT_KIND_TOO_COLD,
    Incident.TOO_HOT: IncidentKind.INCIDENT_KIND_TOO_HOT,
    Incident.DEVICE_OFFLINE: IncidentKind.INCIDENT_KIND_DEVICE_OFFLINE,
    Incident.LOW_BATTERY: IncidentKind.INCIDENT_KIND_LOW_BATTERY,
    Incident.VISIT_MISSED: IncidentKind.INCIDENT_KIND_VISIT_MISSED,
}
INCIDENT_OF_KIND = {v: k for k, v in KIND.items()}
CONTACT_OUTCOMES = (
    IncidentOutcome.INCIDENT_OUTCOME_FALSE_ALARM,
    IncidentOutcome.INCIDENT_OUTCOME_HANDLED_AT_HOME,
    IncidentOutcome.INCIDENT_OUTCOME_SENT_TO_HOSPITAL,
)
# Detectors the timer runs; the others fire on a sensor event.
TIMED = (
    Incident.INACTIVITY,
    Incident.NIGHT_WANDERING,
    Incident.DEVICE_OFFLINE,
    Incident.VISIT_MISSED,
)


def derived_id(*parts: str) -> str:
    """An id derived from what caused it: handled twice, it is the same id."""
    return str(uuid.uuid5(INCIDENT_NAMESPACE, "/".join(parts)))


def kind_of(incident: IncidentState) -> IncidentKind.ValueType:
    return KIND[Incident(incident.kind)]


@dataclass(frozen=True)
class Fact:
    """An event to publish on the resident's key."""

    spec: TopicSpec
    message: Message
    event_id: str


@dataclass
class Outcome:
    """What an input did: the new state, the facts to publish, a label for metrics."""

    state: HomeState
    facts: list[Fact] = field(default_factory=list)
    outcome: str = ""


def emergency_service(territory: str) -> Step:
    """The territory's SAMU (15): it always answers, so it is the last step."""
    return Step(contact_id=f"samu-{territory}", role=ROLE_EMERGENCY_SERVICE, acknowledge_within_s=0)


def chain_for(kind: Incident, config: HomeConfig, *, emergency: bool = True) -> list[Step]:
    """Who an incident reaches, in order: the provider for a device, the aide service then
    the contacts for a missed visit, the contacts (then the SAMU for a fall or a panic,
    unless `emergency` is False: an alarm reported after she was seen moving again)."""
    contacts = [Step(**c.model_dump()) for c in config.contacts]
    if kind in TECHNICAL:
        return [Step(**config.device_provider.model_dump())]
    if kind is Incident.VISIT_MISSED and config.aide_service is not None:
        return [Step(**config.aide_service.model_dump()), *contacts]
    if kind in EMERGENCIES and emergency:
        return [*contacts, emergency_service(config.territory)]
    return contacts


def notified(step: Step, index: int) -> NotifiedContact:
    return NotifiedContact(contact_id=step.contact_id, role=step.role, step=index)  # type: ignore[arg-type]


def _next_escalation(chain: list[Step], step: int, now: datetime) -> datetime | None:
    if step + 1 >= len(chain):
        return None
    return now + timedelta(seconds=chain[step].acknowledge_within_s)


@dataclass(frozen=True)
class NewIncident:
    kind: Incident
    episode: str
    reason: str
    occurred_at: datetime
    sensor_event_ids: tuple[str, ...] = ()
    device_id: str = ""
    visit_id: str = ""
    # False for a fall or panic reported after later activity: the contacts, not the SAMU.
    emergency: bool = True


def incident_id_for(resident: str, kind: Incident, episode: str) -> str:
    return derived_id(resident, kind.value, episode)


def raise_incident(state: HomeState, resident: str, new: NewIncident, now: datetime) -> list[Fact]:
    """Open the incident of an episode and tell the first contact of its chain: its
    IncidentRaised first, then any incident expired to keep the home under
    OPEN_INCIDENTS_KEPT. Nothing when the home already had that incident (an id is never
    raised twice: a resent report must not reopen one, call anyone or count a fall again)."""
    config = state.config
    assert config is not None
    incident_id = incident_id_for(resident, new.kind, new.episode)
    if state.has_incident(incident_id):
        return []
    chain = chain_for(new.kind, config, emergency=new.emergency)
    incident = IncidentState(
        incident_id=incident_id,
        kind=new.kind.value,
        episode=new.episode,
        reason=new.reason,
        territory=config.territory,
        occurred_at=new.occurred_at,
        raised_at=now,
        chain=chain,
        next_escalation_at=_next_escalation(chain, 0, now),
        sensor_event_ids=list(new.sensor_event_ids),
        device_id=new.device_id,
        visit_id=new.visit_id,
    )
    falls = state.fell(new.occurred_at) if new.kind is Incident.FALL else 0
    state.add_incident(incident)
    raised = IncidentRaised(
        incident_id=incident_id,
        resident_pseudonym=resident,
        kind=KIND[new.kind],
        sensor_event_ids=list(new.sensor_event_ids),
        raised_at=timestamp(now),
        falls_in_last_30_days=falls,
        notified=notified(chain[0], 0),
        reason=new.reason,
        occurred_at=timestamp(new.occurred_at),
        device_id=new.device_id,
        visit_id=new.visit_id,
        chain_length=len(chain),
    )
    return [Fact(INCIDENT_RAISED, raised, incident_id), *_expire(state, resident, incident_id, now)]


def _expire(state: HomeState, resident: str, keep: str, now: datetime) -> list[Fact]:
    """Close the oldest open incidents beyond OPEN_INCIDENTS_KEPT (never `keep`, the one
    just raised): first those a contact took or whose chain ended, oldest first."""
    opened = [i for i in state.incidents.values() if i.is_open and i.incident_id != keep]
    excess = len(opened) + 1 - OPEN_INCIDENTS_KEPT
    if excess <= 0:
        return []
    oldest = sorted(opened, key=lambda i: (i.next_escalation_at is not None, i.raised_at))
    return [
        resolve(i, resident, IncidentOutcome.INCIDENT_OUTCOME_EXPIRED, SERVICE, False, now)
        for i in oldest[:excess]
    ]


def resolve(
    incident: IncidentState,
    resident: str,
    outcome: IncidentOutcome.ValueType,
    by: str,
    injury: bool,
    now: datetime,
) -> Fact:
    incident.status, incident.outcome, incident.injury = RESOLVED, int(outcome), injury
    incident.resolved_by, incident.resolved_at, incident.next_escalation_at = by, now, None
    resolved = IncidentResolved(
        incident_id=incident.incident_id,
        resident_pseudonym=resident,
        outcome=outcome,
        injury=injury,
        resolved_by=by,
        resolved_at=timestamp(now),
        kind=kind_of(incident),
    )
    return Fact(INCIDENT_RESOLVED, resolved, derived_id(incident.incident_id, "resolved"))


def clear(incident: IncidentState | None, resident: str, now: datetime) -> list[Fact]:
    """The condition ended (activity, return, device back, temperature or battery back,
    aide arrived): the incident closes as CLEARED and its chain stops, acknowledged or
    not, so that the next episode raises a new incident (an acknowledged one nobody
    resolves must not switch its detector off)."""
    if incident is None or not incident.is_open:
        return []
    return [
        resolve(incident, resident, IncidentOutcome.INCIDENT_OUTCOME_CLEARED, SERVICE, False, now)
    ]


def _timer(
    resident: str, action: IncidentAction.ValueType, action_id: str, now: datetime, **fields: object
) -> IncidentActionRequested:
    request = IncidentActionRequested(
        action_id=action_id,
        resident_pseudonym=resident,
        action=action,
        requested_at=timestamp(now),
    )
    for name, value in fields.items():
        setattr(request, name, value)
    return request


def detections_due(state: HomeState, now: datetime) -> list[tuple[NewIncident, str]]:
    """Time-based detections due now, each with its subject (device or visit id): the same
    list for the timer (to find) and for the step (to apply). An episode that already had its
    incident, or a kind with an incident still open, is not due again."""
    config = state.config
    if config is None:
        return []
    found: list[tuple[NewIncident, str]] = []
    since = inactivity_since(config.rhythm, state.last_activity_at, config.enrolled_at, now)
    if since is not None:
        hours = config.rhythm.inactivity_alert_after_s / 3600
        found.append(
            (
                NewIncident(
                    Incident.INACTIVITY,
                    f"since {since.isoformat()}",
                    f"inactivity.active_hours: no activity for {hours:g} h in active hours",
                    since,
                ),
                "",
            )
        )
    watch = state.door_watch
    within = timedelta(seconds=config.thresholds.night_return_within_s)
    if watch is not None and wandering_due(watch, within, now):
        found.append(
            (
                NewIncident(
                    Incident.NIGHT_WANDERING,
                    f"door {watch.sensor_event_id}",
                    "night_wandering.no_return: door opened in quiet hours, "
                    f"no return within {within.total_seconds() / 60:g} min",
                    watch.opened_at,
                    (watch.sensor_event_id,),
                    device_id=watch.device_id,
                ),
                "",
            )
        )
    for device_id, silent_since in silent_devices(config, state, now):
        found.append(
            (
                NewIncident(
                    Incident.DEVICE_OFFLINE,
                    f"{device_id} since {silent_since.isoformat()}",
                    "device_offline.silent: no report for "
                    f"{config.thresholds.device_offline_after_s / 60:g} min",
                    silent_since,
                    device_id=device_id,
                ),
                device_id,
            )
        )
    for visit in missed_visits(state.visits, now):
        found.append(
            (
                NewIncident(
                    Incident.VISIT_MISSED,
                    f"visit {visit.visit_id}",
                    f"visit.missed: no check-in {visit.missed_after_s / 60:g} min "
                    "after the planned start",
                    visit.planned_start,
                    visit_id=visit.visit_id,
                ),
                visit.visit_id,
            )
        )
    return [(new, subject) for new, subject in found if _fresh(state, new)]


def _fresh(state: HomeState, new: NewIncident) -> bool:
    kind = new.kind.value
    if state.open_incident(kind, device_id=new.device_id, visit_id=new.visit_id) is not None:
        return False
    return not any(i.kind == kind and i.episode == new.episode for i in state.incidents.values())


def due_actions(resident: str, state: HomeState, now: datetime) -> list[IncidentActionRequested]:
    """Timer steps due now: escalations of unacknowledged incidents, time-based detections."""
    actions = []
    for incident in state.incidents.values():
        due = incident.next_escalation_at
        if incident.status == OPEN and due is not None and due <= now:
            step = incident.step + 1
            actions.append(
                _timer(
                    resident,
                    IncidentAction.INCIDENT_ACTION_ESCALATION_DUE,
                    derived_id(incident.incident_id, "escalate", str(step)),
                    now,
                    incident_id=incident.incident_id,
                    escalation_step=step,
                )
            )
    for new, subject in detections_due(state, now):
        actions.append(
            _timer(
                resident,
                IncidentAction.INCIDENT_ACTION_DETECTION_DUE,
                derived_id(resident, "detect", new.kind.value, new.episode),
                now,
                detector=KIND[new.kind],
                device_id=subject if new.kind is Incident.DEVICE_OFFLINE else "",
                visit_id=subject if new.kind is Incident.VISIT_MISSED else "",
            )
        )
    return actions


def apply_action(action: IncidentActionRequested, *, state: HomeState, now: datetime) -> Outcome:
    """Apply a contact's action or a timer step to the home's incidents, once."""
    if state.has_seen(action.action_id):
        return Outcome(state, outcome="duplicate")
    if state.config is None:
        raise InvalidEventError("home is not enrolled")
    state = state.changed()
    resident = action.resident_pseudonym
    if action.action == IncidentAction.INCIDENT_ACTION_DETECTION_DUE:
        return _detection_due(action, state, now)
    incident = state.incidents.get(action.incident_id)
    if action.action == IncidentAction.INCIDENT_ACTION_ESCALATION_DUE:
        return _escalation_due(action, incident, state, now)
    if incident is None:
        raise InvalidEventError("home has no incident with this incident_id")
    if not incident.in_chain(action.contact_id):
        raise InvalidEventError("contact_id is not in the incident's chain")
    if action.action == IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE:
        if incident.status != OPEN:
            return Outcome(state, outcome=f"already_{incident.status}")
        state.remember(action.action_id)
        return Outcome(
            state, [acknowledge(incident, resident, action.contact_id, now)], "acknowledged"
        )
    if action.action == IncidentAction.INCIDENT_ACTION_RESOLVE:
        if action.outcome not in CONTACT_OUTCOMES:
            raise InvalidEventError(
                "an incident is resolved as FALSE_ALARM, HANDLED_AT_HOME or SENT_TO_HOSPITAL"
            )
        if incident.status == RESOLVED:
            return Outcome(state, outcome="already_resolved")
        state.remember(action.action_id)
        fact = resolve(incident, resident, action.outcome, action.contact_id, action.injury, now)
        return Outcome(state, [fact], "resolved")
    raise InvalidEventError("action must be acknowledge, resolve, escalation or detection")


def acknowledge(incident: IncidentState, resident: str, contact_id: str, now: datetime) -> Fact:
    incident.status, incident.acknowledged_by, incident.acknowledged_at = (
        ACKNOWLEDGED,
        contact_id,
        now,
    )
    incident.next_escalation_at = None
    acknowledged = IncidentAcknowledged(
        incident_id=incident.incident_id,
        resident_pseudonym=resident,
        kind=kind_of(incident),
        contact_id=contact_id,
        acknowledged_at=timestamp(now),
        step=incident.step,
    )
    acknowledged.time_to_acknowledge.FromTimedelta(now - incident.raised_at)
    return Fact(
        INCIDENT_ACKNOWLEDGED, acknowledged, derived_id(incident.incident_id, "acknowledged")
    )


def _escalation_due(
    action: IncidentActionRequested, incident: IncidentState | None, state: HomeState, now: datetime
) -> Outcome:
    # Applied only if it is still the next step and still due: a tick that crossed an
    # acknowledgement or an earlier tick does nothing.
    if (
        incident is None
        or incident.status != OPEN
        or action.escalation_step != incident.step + 1
        or action.escalation_step >= len(incident.chain)
        or incident.next_escalation_at is None
        or incident.next_escalation_at > now
    ):
        return Outcome(state, outcome="not_due")
    incident.step = action.escalation_step
    incident.next_escalation_at = _next_escalation(incident.chain, incident.step, now)
    state.remember(action.action_id)
    escalated = IncidentEscalated(
        incident_id=incident.incident_id,
        resident_pseudonym=action.resident_pseudonym,
        kind=kind_of(incident),
        notified=notified(incident.chain[incident.step], incident.step),
        escalated_at=timestamp(now),
        chain_exhausted=incident.chain_exhausted,
    )
    fact = Fact(
        INCIDENT_ESCALATED,
        escalated,
        derived_id(incident.incident_id, "escalated", str(incident.step)),
    )
    return Outcome(state, [fact], "escalated")


def _detection_due(action: IncidentActionRequested, state: HomeState, now: datetime) -> Outcome:
    detector = INCIDENT_OF_KIND.get(action.detector)
    if detector not in TIMED:
        raise InvalidEventError("detector must be inactivity, night wandering, offline or visit")
    subject = action.device_id or action.visit_id
    found = [
        new for new, on in detections_due(state, now) if new.kind is detector and on == subject
    ]
    if not found:
        return Outcome(state, outcome="not_due")
    new = found[0]
    facts = raise_incident(state, action.resident_pseudonym, new, now)
    if not facts:
        return Outcome(state, outcome="not_due")  # this episode already had its incident
    state.remember(action.action_id)
    if new.kind is Incident.VISIT_MISSED:
        state.visits[new.visit_id].incident_id = facts[0].event_id
    return Outcome(state, facts, new.kind.value)
