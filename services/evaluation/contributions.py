"""What one event adds to its month's figures (definitions: docs/evaluation.md).

Plain functions from a protobuf event to contributions; the handler applies them to the
partition's cell. Dimensions are enum names in lower case (`severity=critical`), never an
id or a pseudonym.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    ConsultationStatus,
    ConsultationStatusChanged,
    Profession,
    RequestFlagged,
    SlotBooked,
    Urgency,
)
from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertAcknowledged,
    AlertEscalated,
    AlertRaised,
    AlertSeverity,
    ReadingRecorded,
)
from emeuse.home.v1.home_events_pb2 import (
    ContactRole,
    IncidentAcknowledged,
    IncidentEscalated,
    IncidentKind,
    IncidentRaised,
)
from emeuse.prevention.v1.prevention_events_pb2 import (
    DeliveryReceiptReported,
    DeliveryStatus,
    OptOutRecorded,
)
from services.evaluation.domain.secrecy import Relation

GAP_RULE = "monitoring.gap"
# Indicators counting distinct persons in the month (each person once per cell).
PERSON_COUNTS = frozenset({"chronic.patients_monitored", "prevention.people_reached"})
# How indicators tie together beside a total and its breakdowns (secrecy.py): equal to,
# or contained in, another; a withheld one must not be found from the other.
RELATIONS = (
    Relation(("chronic.monitoring_gaps", ""), (("chronic.alerts", f"rule={GAP_RULE}"),)),
    Relation(("home.missed_visits", ""), (("home.incidents", "kind=visit_missed"),)),
    Relation(("home.escalations", ""), (("home.escalations_to_samu", ""),)),
    Relation(("access.bookings", ""), (("access.wait_to_booking.observations", ""),)),
)
CONSULTATION_OUTCOMES = {
    ConsultationStatus.CONSULTATION_STATUS_COMPLETED: "kept",
    ConsultationStatus.CONSULTATION_STATUS_NO_SHOW: "missed",
    ConsultationStatus.CONSULTATION_STATUS_CANCELLED: "cancelled",
}
MESSAGE_OUTCOMES = {
    DeliveryStatus.DELIVERY_STATUS_DELIVERED: "delivered",
    DeliveryStatus.DELIVERY_STATUS_FAILED: "failed",
    DeliveryStatus.DELIVERY_STATUS_BOUNCED: "failed",
}


@dataclass(frozen=True)
class Count:
    """One more in the indicator's total, and in each of its breakdowns."""

    name: str
    breakdowns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Duration:
    name: str
    seconds: float


@dataclass(frozen=True)
class Person:
    """The event's person counts once in the month for this indicator."""

    name: str


Contribution = Count | Duration | Person


def label(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _reading(m: ReadingRecorded) -> list[Contribution]:
    return [Count("chronic.readings"), Person("chronic.patients_monitored")]


def _alert(m: AlertRaised) -> list[Contribution]:
    severity = label(AlertSeverity, m.severity, "ALERT_SEVERITY_")
    out: list[Contribution] = [Count("chronic.alerts", (f"severity={severity}", f"rule={m.rule}"))]
    if m.rule == GAP_RULE:
        out.append(Count("chronic.monitoring_gaps"))
    return out


def _alert_acknowledged(m: AlertAcknowledged) -> list[Contribution]:
    return [
        Duration("chronic.time_to_acknowledge", m.time_to_acknowledge.ToTimedelta().total_seconds())
    ]


def _alert_escalated(m: AlertEscalated) -> list[Contribution]:
    return [Count("chronic.escalations")]


def _requested(m: ConsultationRequested) -> list[Contribution]:
    urgency = label(Urgency, m.urgency, "URGENCY_")
    profession = label(Profession, m.profession, "PROFESSION_")
    return [Count("access.requests", (f"urgency={urgency}", f"profession={profession}"))]


def _booked(m: SlotBooked) -> list[Contribution]:
    if m.rescheduled_from:
        # A rescheduled booking is the same request served again: its wait was counted.
        return [Count("access.reschedules")]
    return [
        Count("access.bookings"),
        Duration("access.wait_to_booking", m.waited.ToTimedelta().total_seconds()),
    ]


def _status(m: ConsultationStatusChanged) -> list[Contribution]:
    outcome = CONSULTATION_OUTCOMES.get(m.status)
    return [Count("access.consultations", (f"outcome={outcome}",))] if outcome else []


def _flagged(m: RequestFlagged, asked: tuple[str, ...] = ()) -> list[Contribution]:
    urgency = f"urgency={label(Urgency, m.urgency, 'URGENCY_')}"
    return [Count("access.requests_flagged_unmet", (urgency, *asked))]


def _incident(m: IncidentRaised) -> list[Contribution]:
    out: list[Contribution] = [
        Count("home.incidents", (f"kind={label(IncidentKind, m.kind, 'INCIDENT_KIND_')}",))
    ]
    if m.kind == IncidentKind.INCIDENT_KIND_VISIT_MISSED:
        out.append(Count("home.missed_visits"))
    return out


def _incident_acknowledged(m: IncidentAcknowledged) -> list[Contribution]:
    return [
        Duration("home.time_to_acknowledge", m.time_to_acknowledge.ToTimedelta().total_seconds())
    ]


def _incident_escalated(m: IncidentEscalated) -> list[Contribution]:
    out: list[Contribution] = [Count("home.escalations")]
    if m.notified.role == ContactRole.CONTACT_ROLE_EMERGENCY_SERVICE:
        out.append(Count("home.escalations_to_samu"))
    return out


def _receipt(m: DeliveryReceiptReported) -> list[Contribution]:
    outcome = MESSAGE_OUTCOMES.get(m.status)
    if outcome is None:
        return []  # opened, clicked: engagement, not delivery (not counted yet)
    out: list[Contribution] = [Count("prevention.messages", (f"outcome={outcome}",))]
    if outcome == "delivered":
        out.append(Person("prevention.people_reached"))
    return out


def _opt_out(m: OptOutRecorded) -> list[Contribution]:
    return [Count("prevention.opt_outs")]


RULES: dict[type[Message], Callable[[Any], list[Contribution]]] = {
    ReadingRecorded: _reading,
    AlertRaised: _alert,
    AlertAcknowledged: _alert_acknowledged,
    AlertEscalated: _alert_escalated,
    ConsultationRequested: _requested,
    SlotBooked: _booked,
    ConsultationStatusChanged: _status,
    RequestFlagged: _flagged,
    IncidentRaised: _incident,
    IncidentAcknowledged: _incident_acknowledged,
    IncidentEscalated: _incident_escalated,
    DeliveryReceiptReported: _receipt,
    OptOutRecorded: _opt_out,
}


def contributions(message: Message, asked: tuple[str, ...] = ()) -> list[Contribution]:
    """What the event adds; `asked` breaks a flagged request down by what was asked
    (unmet.py)."""
    if isinstance(message, RequestFlagged):
        return _flagged(message, asked)
    return RULES[type(message)](message)
