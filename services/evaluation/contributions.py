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
    Modality,
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
from emeuse.partners.v1.partners_pb2 import ConsentChanged, EventShared
from emeuse.prevention.v1.prevention_events_pb2 import (
    DeliveryReceiptReported,
    DeliveryStatus,
    MessageDeliveryRequested,
    OptOutRecorded,
    PreventionActionRecorded,
)
from services.evaluation.domain.secrecy import Relation

GAP_RULE = "monitoring.gap"
POINT_OF_CARE_INR_TO_ALERT = "chronic.point_of_care_inr_to_alert"
DISTANCE_AVOIDED_KM = "access.distance_avoided.km"
# How a booking happens remotely; a first booking with none is in person (remote_care.py).
REMOTE_MODALITIES = frozenset(
    {Modality.MODALITY_VIDEO, Modality.MODALITY_PHONE, Modality.MODALITY_NURSE_ASSISTED}
)
IN_PERSON = "care=in_person"
# Indicators counting distinct persons in the month (each person once per cell).
PERSON_COUNTS = frozenset(
    {"chronic.patients_monitored", "prevention.people_reached", "prevention.people_engaged"}
)
# How indicators tie together beside a total and its breakdowns (secrecy.py): equal to,
# or contained in, another; a withheld one must not be found from the other.
RELATIONS = (
    Relation(("chronic.monitoring_gaps", ""), (("chronic.alerts", f"rule={GAP_RULE}"),)),
    Relation(("home.missed_visits", ""), (("home.incidents", "kind=visit_missed"),)),
    Relation(("home.escalations", ""), (("home.escalations_to_samu", ""),)),
    Relation(("access.bookings", ""), (("access.wait_to_booking.observations", ""),)),
    Relation(("access.bookings", ""), (("access.distance_avoided.observations", ""),)),
    # Every alert but a gap has a delay from measurement.
    Relation(
        ("chronic.alerts", ""),
        (("chronic.monitoring_gaps", ""), ("chronic.measurement_to_alert.observations", "")),
    ),
    Relation(
        ("chronic.measurement_to_alert.observations", ""),
        (("chronic.point_of_care_inr_to_alert.observations", ""),),
    ),
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
ENGAGEMENT = {
    DeliveryStatus.DELIVERY_STATUS_OPENED: "opened",
    DeliveryStatus.DELIVERY_STATUS_CLICKED: "clicked",
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
class Amount:
    """A magnitude added to the indicator (cells.MAGNITUDES: its unit and scale)."""

    name: str
    amount: int


@dataclass(frozen=True)
class Person:
    """The event's person counts once in the month for this indicator."""

    name: str


Contribution = Count | Duration | Amount | Person


def label(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _reading(m: ReadingRecorded) -> list[Contribution]:
    return [Count("chronic.readings"), Person("chronic.patients_monitored")]


def _alert(m: AlertRaised, point_of_care_inr: bool = False) -> list[Contribution]:
    severity = label(AlertSeverity, m.severity, "ALERT_SEVERITY_")
    out: list[Contribution] = [Count("chronic.alerts", (f"severity={severity}", f"rule={m.rule}"))]
    if m.rule == GAP_RULE:
        # Its "measurement" is the reading expected and missing: no delay to measure.
        out.append(Count("chronic.monitoring_gaps"))
    elif m.HasField("measurement_to_alert"):
        delay = m.measurement_to_alert.ToTimedelta().total_seconds()
        out.append(Duration("chronic.measurement_to_alert", delay))
        if point_of_care_inr:
            out.append(Duration(POINT_OF_CARE_INR_TO_ALERT, delay))
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


def _booked(m: SlotBooked, care: str = "") -> list[Contribution]:
    if m.rescheduled_from:
        # A rescheduled booking is the same request served again: its wait was counted.
        return [Count("access.reschedules")]
    modality = label(Modality, m.modality, "MODALITY_")
    out: list[Contribution] = [
        Count("access.bookings", (f"modality={modality}", *([care] if care else []))),
        Duration("access.wait_to_booking", m.waited.ToTimedelta().total_seconds()),
    ]
    if m.modality in REMOTE_MODALITIES and m.distance_km > 0:
        # The trip to the practitioner's place this remote booking spared, one way, in
        # tenths of km (access rounds the distance to 0.1 km).
        out.append(Count("access.distance_avoided.observations"))
        out.append(Amount(DISTANCE_AVOIDED_KM, round(m.distance_km * 10)))
    return out


def _status(m: ConsultationStatusChanged) -> list[Contribution]:
    outcome = CONSULTATION_OUTCOMES.get(m.status)
    out: list[Contribution] = (
        [Count("access.consultations", (f"outcome={outcome}",))] if outcome else []
    )
    if m.HasField("request_to_consultation"):
        # Set once per consultation, when it first starts (or completes without a start).
        wait = m.request_to_consultation.ToTimedelta().total_seconds()
        out.append(Duration("access.wait_to_consultation", wait))
    return out


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
    action = ENGAGEMENT.get(m.status)
    if action is not None:
        return [
            Count("prevention.engagement", (f"action={action}",)),
            Person("prevention.people_engaged"),
        ]
    outcome = MESSAGE_OUTCOMES.get(m.status)
    if outcome is None:
        return []
    out: list[Contribution] = [Count("prevention.messages", (f"outcome={outcome}",))]
    if outcome == "delivered":
        out.append(Person("prevention.people_reached"))
    return out


def _opt_out(m: OptOutRecorded) -> list[Contribution]:
    return [Count("prevention.opt_outs")]


def _by_person(m: Message) -> list[Contribution]:
    # Reminders sent and acted on need the person's reminders: reminders.py counts them.
    return []


def _consent(m: ConsentChanged) -> list[Contribution]:
    # The partner and purpose stay out: a partner with few patients would be a small cell
    # in every breakdown; the total by change is what the evaluation asks.
    return [Count("partners.consents", ("change=granted" if m.granted else "change=withdrawn",))]


def _shared(m: EventShared) -> list[Contribution]:
    # One delivery per partner: an event two feeds got counts once for each, so the total
    # is the sum of its partners (deliveries, not distinct events).
    return [Count("partners.events_consumed", (f"partner={p}",)) for p in m.partner_ids]


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
    MessageDeliveryRequested: _by_person,
    PreventionActionRecorded: _by_person,
    ConsentChanged: _consent,
    EventShared: _shared,
}


PARTNER_SOURCE = "partner/"


def published_by(source: str) -> list[Contribution]:
    """An event a partner published (ce_source `partner/<id>`, kept by the gateway when it
    admits the event to the platform's topic) counts for that partner."""
    if not source.startswith(PARTNER_SOURCE):
        return []
    partner = source.removeprefix(PARTNER_SOURCE)
    return [Count("partners.events_published", (f"partner={partner}",))]


def contributions(
    message: Message, asked: tuple[str, ...] = (), point_of_care_inr: bool = False, care: str = ""
) -> list[Contribution]:
    """What the event adds; `asked` breaks a flagged request down by what was asked
    (unmet.py); `point_of_care_inr` says a capillary INR raised the alert (point_of_care.py);
    `care` breaks a first booking down by teleconsultation, télésoin or in person
    (remote_care.py, empty while its request is not read)."""
    if isinstance(message, SlotBooked):
        return _booked(message, care)
    if isinstance(message, RequestFlagged):
        return _flagged(message, asked)
    if isinstance(message, AlertRaised):
        return _alert(message, point_of_care_inr)
    return RULES[type(message)](message)
