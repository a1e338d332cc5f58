"""Alert lifecycle: raise, join an episode, escalate, acknowledge, resolve; and the timers.

The patient's partition task is the single writer of a patient's alerts (one partition, one
instance), so every change goes through it: readings and lab reviews, care-team actions
and the service's own timers all arrive as events on the patient's key. Timers are
deadlines kept in the patient's state (table and changelog), never in memory: after a
restart the instance that owns the patient finds them due and asks for the step, which
is applied once because its id is derived from the alert and the step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertAcknowledged,
    AlertAction,
    AlertActionRequested,
    AlertEscalated,
    AlertRaised,
    AlertResolution,
    AlertResolved,
    AlertSeverity,
    AlertUpdated,
    CareTeamMember,
    ReadingCorrection,
    RecentResult,
)
from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_RESOLVED,
    ALERT_UPDATED,
)
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.events import Fact
from services.chronic.domain.monitoring import (
    ACKNOWLEDGED,
    GAP,
    OPEN,
    RESOLVED,
    REVIEW,
    AlertState,
    Correction,
    PatientState,
    Result,
)
from services.chronic.domain.plan import ROLE_LAB, Member, PlanInForce

ALERT_NAMESPACE = uuid.UUID("0c7d3a52-55f4-4c7b-9a0e-c4b0e1a1e055")
SEVERITY = {
    "warning": AlertSeverity.ALERT_SEVERITY_WARNING,
    "critical": AlertSeverity.ALERT_SEVERITY_CRITICAL,
}
RECENT_RESULTS_SHOWN = 5
CARE_TEAM_RESOLUTIONS = (
    AlertResolution.ALERT_RESOLUTION_HANDLED,
    AlertResolution.ALERT_RESOLUTION_FALSE_ALARM,
)


def derived_id(*parts: str) -> str:
    """An id derived from what caused it: handled twice, it is the same id."""
    return str(uuid.uuid5(ALERT_NAMESPACE, "/".join(parts)))


@dataclass
class Outcome:
    """What an input did: the new state, the facts to publish, a label for metrics."""

    state: PatientState
    facts: list[Fact] = field(default_factory=list)
    outcome: str = ""
    # Measurement-to-alert time of a point-of-care result that raised an alert.
    point_of_care_to_alert: timedelta | None = None


def _member(member: Member) -> CareTeamMember:
    return CareTeamMember(
        member_id=member.member_id,
        role=member.role,  # type: ignore[arg-type]
        escalation_rank=member.rank,
    )


@dataclass(frozen=True)
class NewAlert:
    alert_id: str
    episode: str
    loinc_code: str
    severity: str
    rule: str
    reason: str
    reading_ids: list[str]
    measured_at: datetime
    territory: str
    prescriber_first: bool = False
    # The result that raised it, shown among the recent results even if it came late.
    trigger: Result | None = None
    # Set when a corrected result raised it.
    correction: Correction | None = None


def raise_alert(
    state: PatientState, patient: str, plan: PlanInForce, new: NewAlert, now: datetime
) -> Fact:
    chain = plan.escalation_chain(prescriber_first=new.prescriber_first)
    delay = timedelta(seconds=plan.acknowledge_within_s)
    state.add_alert(
        AlertState(
            alert_id=new.alert_id,
            episode=new.episode,
            loinc_code=new.loinc_code,
            severity=new.severity,
            rule=new.rule,
            reason=new.reason,
            territory=new.territory,
            raised_at=now,
            reading_ids=list(new.reading_ids),
            chain=chain,
            acknowledge_within_s=plan.acknowledge_within_s,
            next_escalation_at=now + delay if len(chain) > 1 else None,
            last_measured_at=new.measured_at,
            correction=new.correction,
        )
    )
    band = plan.bands.get(new.loinc_code)
    recent = {
        r.reading_id: r for r in state.history.get(new.loinc_code, [])[-RECENT_RESULTS_SHOWN:]
    }
    if new.trigger is not None and new.trigger.reading_id not in recent:
        oldest = min(recent.values(), key=lambda r: r.measured_at, default=None)
        if len(recent) >= RECENT_RESULTS_SHOWN and oldest is not None:
            del recent[oldest.reading_id]
        recent[new.trigger.reading_id] = new.trigger
    alert = AlertRaised(
        alert_id=new.alert_id,
        patient_pseudonym=patient,
        severity=SEVERITY[new.severity],
        rule=new.rule,
        reason=new.reason,
        reading_ids=new.reading_ids,
        loinc_code=new.loinc_code,
        raised_at=timestamp(now),
        notified=_member(chain[0]),
        target_low=band.target_low if band else 0.0,
        target_high=band.target_high if band else 0.0,
        unit=band.unit if band else "",
        recent_results=[
            RecentResult(
                reading_id=r.reading_id,
                value=r.value,
                unit=r.unit,
                measured_at=timestamp(r.measured_at),
            )
            for r in sorted(recent.values(), key=lambda r: r.measured_at, reverse=True)
        ],
        measured_at=timestamp(new.measured_at),
    )
    alert.measurement_to_alert.FromTimedelta(max(now - new.measured_at, timedelta(0)))
    if new.correction is not None:
        alert.correction.CopyFrom(correction_of(new.correction))
    return Fact(ALERT_RAISED, alert, new.alert_id)


def correction_of(correction: Correction) -> ReadingCorrection:
    shown = ReadingCorrection(
        reading_id=correction.reading_id,
        corrected_value=correction.corrected_value,
        unit=correction.unit,
    )
    if correction.previous_value is not None:
        shown.previous_value = correction.previous_value
    return shown


def join_episode(
    alert: AlertState,
    patient: str,
    reading_id: str,
    rule: str,
    reason: str,
    now: datetime,
    correction: Correction | None = None,
) -> Fact:
    if reading_id not in alert.reading_ids:  # a corrected reading is in the episode already
        alert.reading_ids.append(reading_id)
    update = AlertUpdated(
        alert_id=alert.alert_id,
        patient_pseudonym=patient,
        rule=rule,
        reason=reason,
        reading_id=reading_id,
        episode_readings=len(alert.reading_ids),
        updated_at=timestamp(now),
    )
    fact_id = derived_id(alert.alert_id, "updated", reading_id)
    if correction is not None:
        alert.correction = correction
        update.correction.CopyFrom(correction_of(correction))
        fact_id = derived_id(fact_id, "corrected", repr(correction.corrected_value))
    return Fact(ALERT_UPDATED, update, fact_id)


def resolve(
    state: PatientState,
    alert: AlertState,
    patient: str,
    resolution: AlertResolution.ValueType,
    member_id: str,
    now: datetime,
    correction: Correction | None = None,
) -> Fact:
    alert.status, alert.resolution = RESOLVED, int(resolution)
    alert.resolved_by, alert.resolved_at, alert.next_escalation_at = member_id, now, None
    # Closed by a reading, the next gap counts from its measurement (state.measured);
    # closed by the care team, from the close: there is no measurement to go by.
    if alert.episode == GAP and resolution != AlertResolution.ALERT_RESOLUTION_DATA_RECEIVED:
        state.gap_closed_at[alert.loinc_code] = now
    resolved = AlertResolved(
        alert_id=alert.alert_id,
        patient_pseudonym=patient,
        resolution=resolution,
        member_id=member_id,
        resolved_at=timestamp(now),
    )
    if correction is not None:
        alert.correction = correction
        resolved.correction.CopyFrom(correction_of(correction))
    return Fact(ALERT_RESOLVED, resolved, derived_id(alert.alert_id, "resolved"))


def close_gap(
    state: PatientState, patient: str, loinc: str, now: datetime, plan: PlanInForce | None
) -> list[Fact]:
    """A measurement of the measure was recorded: its open gap episode ends, unless the
    measurement is older than the gap's start (it does not fill the gap, and the gap would
    be due again at once)."""
    gap = state.open_alert(loinc, GAP)
    if gap is None:
        return []
    # A gap alert's last_measured_at is when it fell due; a filling measurement moves that.
    if (
        plan is not None
        and loinc in plan.bands
        and gap.last_measured_at is not None
        and gap_due_at(plan, state, loinc) <= gap.last_measured_at
    ):
        return []
    return [resolve(state, gap, patient, AlertResolution.ALERT_RESOLUTION_DATA_RECEIVED, "", now)]


def gap_due_at(plan: PlanInForce, state: PatientState, loinc: str) -> datetime:
    """When a reading of `loinc` is overdue: one interval after the latest of the start of
    its monitoring at this interval, the last measurement and the end of the last gap."""
    band = plan.bands[loinc]
    since = max(
        filter(
            None,
            (
                band.monitored_since or plan.recorded_at,
                state.last_measured_at.get(loinc),
                state.gap_closed_at.get(loinc),
            ),
        )
    )
    return since + band.expected_every


def due_actions(
    patient: str, plan: PlanInForce | None, state: PatientState, now: datetime
) -> list[AlertActionRequested]:
    """Timer steps due now: escalations of unacknowledged alerts, monitoring gaps."""
    actions = []
    for alert in state.alerts.values():
        due = alert.next_escalation_at
        if alert.status == OPEN and due is not None and due <= now:
            step = alert.step + 1
            actions.append(
                AlertActionRequested(
                    action_id=derived_id(alert.alert_id, "escalate", str(step)),
                    patient_pseudonym=patient,
                    action=AlertAction.ALERT_ACTION_ESCALATION_DUE,
                    alert_id=alert.alert_id,
                    escalation_step=step,
                    requested_at=timestamp(now),
                )
            )
    for pending in state.pending_review.values():
        due_at = pending.received_at + timedelta(seconds=plan.review_within_s) if plan else None
        if due_at is not None and not pending.overdue_alerted and due_at <= now:
            actions.append(
                AlertActionRequested(
                    action_id=derived_id(patient, "review-due", pending.reading_id),
                    patient_pseudonym=patient,
                    action=AlertAction.ALERT_ACTION_REVIEW_DUE,
                    reading_id=pending.reading_id,
                    requested_at=timestamp(now),
                )
            )
    for loinc in plan.bands if plan else ():
        assert plan is not None
        due_at = gap_due_at(plan, state, loinc)
        if due_at <= now and state.open_alert(loinc, GAP) is None:
            actions.append(
                AlertActionRequested(
                    action_id=derived_id(patient, "gap", loinc, due_at.isoformat()),
                    patient_pseudonym=patient,
                    action=AlertAction.ALERT_ACTION_GAP_DUE,
                    loinc_code=loinc,
                    requested_at=timestamp(now),
                )
            )
    return actions


def apply_action(
    action: AlertActionRequested, *, plan: PlanInForce | None, state: PatientState, now: datetime
) -> Outcome:
    """Apply a care-team action or a timer step to the patient's alerts, once."""
    if state.has_seen(action.action_id):
        return Outcome(state, outcome="duplicate")
    if plan is None:
        raise InvalidEventError("patient is not enrolled in remote monitoring")
    state = state.changed()
    patient = action.patient_pseudonym
    if action.action == AlertAction.ALERT_ACTION_GAP_DUE:
        return _gap_due(action, plan, state, now)
    if action.action == AlertAction.ALERT_ACTION_REVIEW_DUE:
        return _review_due(action, plan, state, now)
    alert = state.alerts.get(action.alert_id)
    if action.action == AlertAction.ALERT_ACTION_ESCALATION_DUE:
        return _escalation_due(action, alert, state, now)
    if alert is None:
        raise InvalidEventError(f"patient has no alert {action.alert_id!r}")
    member = plan.member(action.member_id)
    if member is None or member.role == ROLE_LAB:
        raise InvalidEventError(f"{action.member_id!r} is not on the patient's care team")
    if action.action == AlertAction.ALERT_ACTION_ACKNOWLEDGE:
        if alert.status != OPEN:
            return Outcome(state, outcome=f"already_{alert.status}")
        alert.status, alert.acknowledged_by, alert.acknowledged_at = (
            ACKNOWLEDGED,
            action.member_id,
            now,
        )
        alert.next_escalation_at = None
        acknowledged = AlertAcknowledged(
            alert_id=alert.alert_id,
            patient_pseudonym=patient,
            member_id=action.member_id,
            acknowledged_at=timestamp(now),
        )
        acknowledged.time_to_acknowledge.FromTimedelta(now - alert.raised_at)
        state.remember(action.action_id)
        fact = Fact(ALERT_ACKNOWLEDGED, acknowledged, derived_id(alert.alert_id, "acknowledged"))
        return Outcome(state, [fact], "acknowledged")
    if action.action == AlertAction.ALERT_ACTION_RESOLVE:
        if action.resolution not in CARE_TEAM_RESOLUTIONS:
            raise InvalidEventError("a care team resolves an alert as HANDLED or FALSE_ALARM")
        if alert.status == RESOLVED:
            return Outcome(state, outcome="already_resolved")
        state.remember(action.action_id)
        fact = resolve(state, alert, patient, action.resolution, action.member_id, now)
        return Outcome(state, [fact], "resolved")
    raise InvalidEventError("action must be acknowledge, resolve, escalation or gap")


def _escalation_due(
    action: AlertActionRequested, alert: AlertState | None, state: PatientState, now: datetime
) -> Outcome:
    # A step is applied only if it is still the next one and still due; anything else is
    # a tick that crossed an acknowledgement or an earlier tick: nothing to do.
    if (
        alert is None
        or alert.status != OPEN
        or action.escalation_step != alert.step + 1
        or action.escalation_step >= len(alert.chain)
        or alert.next_escalation_at is None
        or alert.next_escalation_at > now
    ):
        return Outcome(state, outcome="not_due")
    alert.step = action.escalation_step
    more = alert.step + 1 < len(alert.chain)
    alert.next_escalation_at = now + timedelta(seconds=alert.acknowledge_within_s) if more else None
    state.remember(action.action_id)
    escalated = AlertEscalated(
        alert_id=alert.alert_id,
        patient_pseudonym=action.patient_pseudonym,
        step=alert.step,
        notified=_member(alert.chain[alert.step]),
        escalated_at=timestamp(now),
    )
    fact = Fact(
        ALERT_ESCALATED, escalated, derived_id(alert.alert_id, "escalated", str(alert.step))
    )
    return Outcome(state, [fact], "escalated")


def _gap_due(
    action: AlertActionRequested, plan: PlanInForce, state: PatientState, now: datetime
) -> Outcome:
    loinc = action.loinc_code
    if loinc not in plan.bands:
        return Outcome(state, outcome="not_due")
    due_at = gap_due_at(plan, state, loinc)
    if due_at > now or state.open_alert(loinc, GAP) is not None:
        return Outcome(state, outcome="not_due")
    state.remember(action.action_id)
    every = plan.bands[loinc].expected_every
    new = NewAlert(
        alert_id=derived_id(action.patient_pseudonym, "gap", loinc, due_at.isoformat()),
        episode=GAP,
        loinc_code=loinc,
        severity="warning",
        rule="monitoring.gap",
        reason=f"{loinc} no reading since {(due_at - every).isoformat()} (expected every {every})",
        reading_ids=[],
        measured_at=due_at,
        territory=plan.territory,
    )
    fact = raise_alert(state, action.patient_pseudonym, plan, new, now)
    return Outcome(state, [fact], "gap")


def _review_due(
    action: AlertActionRequested, plan: PlanInForce, state: PatientState, now: datetime
) -> Outcome:
    pending = state.pending_review.get(action.reading_id)
    if (
        pending is None
        or pending.overdue_alerted
        or pending.received_at + timedelta(seconds=plan.review_within_s) > now
    ):
        return Outcome(state, outcome="not_due")
    state.remember(action.action_id)
    pending.overdue_alerted = True
    new = NewAlert(
        alert_id=derived_id(action.patient_pseudonym, "review", pending.reading_id),
        episode=REVIEW,
        loinc_code=pending.loinc_code,
        severity="warning",
        rule="point_of_care.review_overdue",
        reason=(
            f"{pending.loinc_code} point-of-care result waiting for the lab since "
            f"{pending.received_at.isoformat()}"
        ),
        reading_ids=[pending.reading_id],
        measured_at=pending.measured_at,
        territory=plan.territory,
    )
    fact = raise_alert(state, action.patient_pseudonym, plan, new, now)
    return Outcome(state, [fact], "review_overdue")


def close_review(state: PatientState, patient: str, reading_id: str, now: datetime) -> list[Fact]:
    """The lab reviewed a result whose review was overdue: that alert ends."""
    return [
        resolve(state, alert, patient, AlertResolution.ALERT_RESOLUTION_REVIEWED, "", now)
        for alert in list(state.alerts.values())
        if alert.is_open and alert.episode == REVIEW and reading_id in alert.reading_ids
    ]
