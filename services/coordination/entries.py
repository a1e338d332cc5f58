"""Axis events as timeline entries: ids, times and short codes, never free text.

An alert's reason, a withdrawal's reason code, a message's parameters are left out: they
may say more of the person than a coordinator's overview needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from emeuse.access.v1 import access_events_pb2 as access
from emeuse.chronic.v1 import chronic_events_pb2 as chronic
from emeuse.coordination.v1.coordination_events_pb2 import Axis, EntryKind, TimelineEntry
from emeuse.home.v1 import home_events_pb2 as home
from emeuse.partners import PARTNER_ID
from emeuse.prevention.v1 import prevention_events_pb2 as prevention
from emeuse.runtime.envelope import CODE_OF_TERRITORY
from emeuse.runtime.events import Event
from services.coordination.domain.timeline import Entry

CODE = re.compile(r"[^a-z0-9._-]+")
MAX_CODE = 40


def code(text: str) -> str:
    """A short code: lower case, letters, digits, dots and dashes, at most 40 characters."""
    return CODE.sub("_", text.lower()).strip("_")[:MAX_CODE]


def label(enum: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix, in lower case ("" for unspecified)."""
    name = enum.Name(value).removeprefix(prefix).lower()
    return "" if name == "unspecified" else name


def _at(stamp: Timestamp, event: Event) -> Timestamp:
    # An event whose own time is unset happened when its envelope says.
    return stamp if stamp.seconds or stamp.nanos else event.envelope.occurred_at


Build = Callable[[Any, Event], tuple[str, TimelineEntry]]


def _entry(
    event: Event,
    axis: int,
    kind: int,
    stamp: Timestamp,
    subject: str,
    related: str = "",
    code_: str = "",
    detail: str = "",
) -> TimelineEntry:
    entry = TimelineEntry(
        entry_id=event.envelope.event_id,
        axis=axis,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        subject_id=subject,
        related_id=related,
        code=code(code_),
        detail=code(detail),
        territory=CODE_OF_TERRITORY.get(event.envelope.territory, ""),
        partner_id=partner_of(event.envelope.source),
    )
    entry.occurred_at.CopyFrom(_at(stamp, event))
    return entry


PARTNER_SOURCE = "partner/"


def partner_of(source: str) -> str:
    """The partner that published the event (the gateway stamps ce_source "partner/<id>"
    on what it admits, under the person's consent to that partner); "" for the platform's."""
    return source.removeprefix(PARTNER_SOURCE) if source.startswith(PARTNER_SOURCE) else ""


K, A = EntryKind, Axis


def _alert_raised(m: chronic.AlertRaised, e: Event) -> tuple[str, TimelineEntry]:
    severity = label(chronic.AlertSeverity, m.severity, "ALERT_SEVERITY_")
    entry = _entry(
        e, A.AXIS_CHRONIC, K.ENTRY_KIND_ALERT_RAISED, m.raised_at, m.alert_id, "", severity, m.rule
    )
    return m.patient_pseudonym, entry


def _alert_escalated(m: chronic.AlertEscalated, e: Event) -> tuple[str, TimelineEntry]:
    kind = K.ENTRY_KIND_ALERT_ESCALATED
    entry = _entry(e, A.AXIS_CHRONIC, kind, m.escalated_at, m.alert_id, "", f"step-{m.step}")
    return m.patient_pseudonym, entry


def _alert_acknowledged(m: chronic.AlertAcknowledged, e: Event) -> tuple[str, TimelineEntry]:
    kind = K.ENTRY_KIND_ALERT_ACKNOWLEDGED
    return m.patient_pseudonym, _entry(e, A.AXIS_CHRONIC, kind, m.acknowledged_at, m.alert_id)


def _alert_resolved(m: chronic.AlertResolved, e: Event) -> tuple[str, TimelineEntry]:
    resolution = label(chronic.AlertResolution, m.resolution, "ALERT_RESOLUTION_")
    kind = K.ENTRY_KIND_ALERT_RESOLVED
    entry = _entry(e, A.AXIS_CHRONIC, kind, m.resolved_at, m.alert_id, "", resolution)
    return m.patient_pseudonym, entry


def _requested(m: access.ConsultationRequested, e: Event) -> tuple[str, TimelineEntry]:
    entry = _entry(
        e,
        A.AXIS_ACCESS,
        K.ENTRY_KIND_CONSULTATION_REQUESTED,
        m.requested_at,
        m.request_id,
        m.cause_id,
        label(access.Urgency, m.urgency, "URGENCY_"),
        label(access.Profession, m.profession, "PROFESSION_"),
    )
    return m.patient_pseudonym, entry


def _booked(m: access.SlotBooked, e: Event) -> tuple[str, TimelineEntry]:
    entry = _entry(
        e,
        A.AXIS_ACCESS,
        K.ENTRY_KIND_SLOT_BOOKED,
        m.booked_at,
        m.booking_id,
        m.request_id,
        label(access.Modality, m.modality, "MODALITY_"),
        "rescheduled" if m.rescheduled_from else "",
    )
    return m.patient_pseudonym, entry


def _status(m: access.ConsultationStatusChanged, e: Event) -> tuple[str, TimelineEntry]:
    status = label(access.ConsultationStatus, m.status, "CONSULTATION_STATUS_")
    kind = K.ENTRY_KIND_CONSULTATION_STATUS_CHANGED
    entry = _entry(e, A.AXIS_ACCESS, kind, m.changed_at, m.booking_id, m.request_id, status)
    return m.patient_pseudonym, entry


def _flagged(m: access.RequestFlagged, e: Event) -> tuple[str, TimelineEntry]:
    urgency = label(access.Urgency, m.urgency, "URGENCY_")
    kind = K.ENTRY_KIND_REQUEST_FLAGGED
    return m.patient_pseudonym, _entry(
        e, A.AXIS_ACCESS, kind, m.flagged_at, m.request_id, "", urgency
    )


def _withdrawn(m: access.RequestWithdrawn, e: Event) -> tuple[str, TimelineEntry]:
    reason = label(access.WithdrawalReason, m.reason, "WITHDRAWAL_REASON_")
    kind = K.ENTRY_KIND_REQUEST_WITHDRAWN
    return m.patient_pseudonym, _entry(
        e, A.AXIS_ACCESS, kind, m.withdrawn_at, m.request_id, "", reason
    )


def _incident(kind: int, stamp: str) -> Build:
    def build(m: Any, e: Event) -> tuple[str, TimelineEntry]:
        incident_kind = label(home.IncidentKind, m.kind, "INCIDENT_KIND_")
        code_, detail, related = incident_kind, "", ""
        if isinstance(m, home.IncidentRaised):
            related = m.visit_id
        elif isinstance(m, home.IncidentEscalated):
            code_ = label(home.ContactRole, m.notified.role, "CONTACT_ROLE_")
            detail = incident_kind
        elif isinstance(m, home.IncidentResolved):
            code_ = label(home.IncidentOutcome, m.outcome, "INCIDENT_OUTCOME_")
            detail = incident_kind
        entry = _entry(
            e, A.AXIS_HOME, kind, getattr(m, stamp), m.incident_id, related, code_, detail
        )
        return m.resident_pseudonym, entry

    return build


def _visit(kind: int, stamp: str | None) -> Build:
    def build(m: Any, e: Event) -> tuple[str, TimelineEntry]:
        # A plan's entry is when it was planned (its envelope), not the visit's start.
        when = getattr(m, stamp) if stamp else e.envelope.occurred_at
        return m.resident_pseudonym, _entry(e, A.AXIS_HOME, kind, when, m.visit_id)

    return build


def _programme_started(m: prevention.ProgrammeStarted, e: Event) -> tuple[str, TimelineEntry]:
    programme = label(prevention.Programme, m.programme, "PROGRAMME_")
    kind = K.ENTRY_KIND_PROGRAMME_STARTED
    return m.person_pseudonym, _entry(
        e, A.AXIS_PREVENTION, kind, m.started_at, m.start_id, "", programme
    )


def _programme_ended(m: prevention.ProgrammeEnded, e: Event) -> tuple[str, TimelineEntry]:
    entry = _entry(
        e,
        A.AXIS_PREVENTION,
        K.ENTRY_KIND_PROGRAMME_ENDED,
        m.ended_at,
        m.end_id,
        "",
        label(prevention.Programme, m.programme, "PROGRAMME_"),
        label(prevention.ProgrammeEndReason, m.reason, "PROGRAMME_END_REASON_"),
    )
    return m.person_pseudonym, entry


def _scheduled(m: prevention.MessageScheduled, e: Event) -> tuple[str, TimelineEntry]:
    kind = K.ENTRY_KIND_MESSAGE_SCHEDULED
    stamp = e.envelope.occurred_at
    entry = _entry(e, A.AXIS_PREVENTION, kind, stamp, m.message_id, "", m.programme, m.step)
    return m.person_pseudonym, entry


def _receipt(m: prevention.DeliveryReceiptReported, e: Event) -> tuple[str, TimelineEntry]:
    status = label(prevention.DeliveryStatus, m.status, "DELIVERY_STATUS_")
    kind = K.ENTRY_KIND_MESSAGE_RECEIPT
    entry = _entry(e, A.AXIS_PREVENTION, kind, m.reported_at, m.message_id, "", status, m.channel)
    return m.person_pseudonym, entry


def _opt_out(m: prevention.OptOutRecorded, e: Event) -> tuple[str, TimelineEntry]:
    channels = ",".join(sorted(m.channels)) or "all"
    kind = K.ENTRY_KIND_OPT_OUT_RECORDED
    return m.person_pseudonym, _entry(
        e, A.AXIS_PREVENTION, kind, m.opted_out_at, m.opt_out_id, "", channels
    )


# Message type -> how its event becomes an entry (person, entry).
BUILDERS: dict[type, Build] = {
    chronic.AlertRaised: _alert_raised,
    chronic.AlertEscalated: _alert_escalated,
    chronic.AlertAcknowledged: _alert_acknowledged,
    chronic.AlertResolved: _alert_resolved,
    access.ConsultationRequested: _requested,
    access.SlotBooked: _booked,
    access.ConsultationStatusChanged: _status,
    access.RequestFlagged: _flagged,
    access.RequestWithdrawn: _withdrawn,
    home.IncidentRaised: _incident(K.ENTRY_KIND_INCIDENT_RAISED, "raised_at"),
    home.IncidentEscalated: _incident(K.ENTRY_KIND_INCIDENT_ESCALATED, "escalated_at"),
    home.IncidentAcknowledged: _incident(K.ENTRY_KIND_INCIDENT_ACKNOWLEDGED, "acknowledged_at"),
    home.IncidentResolved: _incident(K.ENTRY_KIND_INCIDENT_RESOLVED, "resolved_at"),
    home.VisitPlanned: _visit(K.ENTRY_KIND_VISIT_PLANNED, None),
    home.VisitStarted: _visit(K.ENTRY_KIND_VISIT_STARTED, "checked_in_at"),
    home.VisitEnded: _visit(K.ENTRY_KIND_VISIT_ENDED, "checked_out_at"),
    prevention.ProgrammeStarted: _programme_started,
    prevention.ProgrammeEnded: _programme_ended,
    prevention.MessageScheduled: _scheduled,
    prevention.DeliveryReceiptReported: _receipt,
    prevention.OptOutRecorded: _opt_out,
}


def entry_of(event: Event) -> tuple[str, TimelineEntry]:
    """(person, entry) of an axis event."""
    return BUILDERS[type(event.message)](event.message, event)


def check_entry(entry: TimelineEntry) -> None:
    """Refuse (ValueError, so the kernel dead-letters it with the reason) an entry read from
    the timeline-entry topic that no builder above would have made."""
    if not entry.entry_id:
        raise ValueError("entry.entry_id is empty")
    if entry.axis == Axis.AXIS_UNSPECIFIED or entry.axis not in Axis.values():
        raise ValueError("entry.axis is not an axis")
    if entry.kind == EntryKind.ENTRY_KIND_UNSPECIFIED or entry.kind not in EntryKind.values():
        raise ValueError("entry.kind is not an entry kind")
    if not entry.HasField("occurred_at"):
        raise ValueError("entry.occurred_at is not set")
    for name in ("code", "detail"):
        if code(getattr(entry, name)) != getattr(entry, name):
            raise ValueError(f"entry.{name} is not a short code (a-z0-9._-, at most {MAX_CODE})")
    if entry.territory and entry.territory not in CODE_OF_TERRITORY.values():
        raise ValueError("entry.territory is not a programme territory (52, 54 or 55)")
    if entry.partner_id and not PARTNER_ID.fullmatch(entry.partner_id):
        raise ValueError("entry.partner_id is not a partner id")


def stored(entry: TimelineEntry) -> Entry:
    """The entry as the timeline table keeps it (domain/timeline.py)."""
    kept = {
        "id": entry.entry_id,
        "axis": label(Axis, entry.axis, "AXIS_"),
        "kind": label(EntryKind, entry.kind, "ENTRY_KIND_"),
        "at": entry.occurred_at.ToMilliseconds(),
        "subject": entry.subject_id,
        "related": entry.related_id,
        "code": entry.code,
        "detail": entry.detail,
        "territory": entry.territory,
    }
    if entry.partner_id:  # only when a partner published it: most entries are the platform's
        kept["partner"] = entry.partner_id
    return kept


def shown(entry: Entry) -> TimelineEntry:
    """A kept entry as the API answers it."""
    out = TimelineEntry(
        entry_id=entry["id"],
        axis=Axis.Value(f"AXIS_{entry['axis'].upper()}"),
        kind=EntryKind.Value(f"ENTRY_KIND_{entry['kind'].upper()}"),
        subject_id=entry["subject"],
        related_id=entry["related"],
        code=entry["code"],
        detail=entry["detail"],
        territory=entry["territory"],
        partner_id=entry.get("partner", ""),
    )
    out.occurred_at.FromMilliseconds(int(entry["at"]))
    return out
