"""The topic registry: every topic on the bus, its one message type, key, size and owner.

Topics are created from here (`emeuse topics create`) before any worker starts, so
partition counts always match what the services' co-partitioned state expects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf.message import Message

from emeuse.access.v1 import access_events_pb2 as access
from emeuse.audit.v1 import audit_events_pb2 as audit
from emeuse.chronic.v1 import chronic_events_pb2 as chronic
from emeuse.coordination.v1 import coordination_events_pb2 as coordination
from emeuse.home.v1 import home_events_pb2 as home
from emeuse.partners.v1 import partners_pb2 as partners
from emeuse.platform.v1 import dead_letter_pb2 as platform
from emeuse.prevention.v1 import prevention_events_pb2 as prevention

TOPIC_NAME = re.compile(r"^emeuse\.[a-z]+\.[a-z]+(-[a-z]+)*\.v[0-9]+$")
DAY_MS = 24 * 3600 * 1000
PARTITIONS = 6


@dataclass(frozen=True)
class TopicSpec:
    """One topic: what it carries, how it is keyed and kept, and which service owns it."""

    name: str
    message: type[Message]
    key: str
    owner: str
    description: str
    compacted: bool = False
    retention_days: int | None = 30
    partitions: int = PARTITIONS
    # Fields that must be set for the event to be valid (strings non-empty, messages present).
    required: tuple[str, ...] = field(default_factory=tuple)
    # Field holding the pseudonym ce_subject must equal: None when it is the key field,
    # "" when the topic's events concern no person (a directory).
    subject: str | None = None
    # Field whose value picks the partition (murmur2), when the record key is not it: a
    # compacted topic keyed "<patient>|<partner>|<purpose>" stays co-partitioned with the
    # patient's events by hashing the pseudonym alone.
    partition_by: str | None = None
    # What the partitioner hashes for that field's value: access's agenda topics hash
    # "agenda-<territory>", which puts the three territories on three partitions of six
    # (their codes alone all hash to partition 0: one instance did all the scheduling).
    partition_format: str = "{}"

    @property
    def subject_field(self) -> str:
        return self.key if self.subject is None else self.subject

    def record_key(self, message: Message) -> str | None:
        """The record key an event must carry: its key field, or "|"-joined key fields."""
        fields = message.DESCRIPTOR.fields_by_name
        names = self.key.split("|")
        if not all(name in fields for name in names):
            return None
        return "|".join(str(getattr(message, name)) for name in names)

    def partition_key(self, key: bytes | None, message: Message | None) -> bytes | None:
        """The bytes the partitioner hashes for this record."""
        if self.partition_by and message is not None:
            return self.partition_format.format(getattr(message, self.partition_by)).encode()
        return key

    @property
    def type_name(self) -> str:
        return self.message.DESCRIPTOR.full_name

    @property
    def schema_version(self) -> str:
        return self.message.DESCRIPTOR.file.package.rsplit(".", 1)[-1]

    @property
    def is_dead_letter(self) -> bool:
        return self.message is platform.MessageDeadLettered

    def kafka_config(self) -> dict[str, str]:
        if self.compacted:
            return {"cleanup.policy": "compact"}
        retention = -1 if self.retention_days is None else self.retention_days * DAY_MS
        return {"cleanup.policy": "delete", "retention.ms": str(retention)}


def dead_letter_topic(owner: str) -> TopicSpec:
    return TopicSpec(
        name=f"emeuse.{owner}.dead-letter.v1",
        message=platform.MessageDeadLettered,
        key="original record key",
        owner=owner,
        description=f"Records the {owner} service could not process, with the reason.",
        retention_days=90,
    )


CARE_PLAN_UPDATED = TopicSpec(
    name="emeuse.chronic.care-plan-updated.v1",
    message=chronic.CarePlanUpdated,
    key="patient_pseudonym",
    owner="chronic",
    description="A prescriber set or changed a patient's monitoring thresholds.",
    compacted=True,
    retention_days=None,
    required=("patient_pseudonym", "care_plan_id"),
)
READING_RECORDED = TopicSpec(
    name="emeuse.chronic.reading-recorded.v1",
    message=chronic.ReadingRecorded,
    key="patient_pseudonym",
    owner="chronic",
    description="A device, nurse or lab measured a value for a monitored patient.",
    required=("reading_id", "patient_pseudonym", "loinc_code", "unit", "measured_at"),
)
READING_CORRECTED = TopicSpec(
    name="emeuse.chronic.reading-corrected.v1",
    message=chronic.ReadingCorrected,
    key="patient_pseudonym",
    owner="chronic",
    description="A lab or device replaced the value of a reading it sent earlier.",
    required=("reading_id", "patient_pseudonym", "loinc_code", "unit", "measured_at"),
)
ALERT_RAISED = TopicSpec(
    name="emeuse.chronic.alert-raised.v1",
    message=chronic.AlertRaised,
    key="patient_pseudonym",
    owner="chronic",
    description="An alert episode opened: a reading broke a care-plan rule, or data stopped.",
    retention_days=90,
    required=("alert_id", "patient_pseudonym", "rule", "raised_at"),
)
ALERT_UPDATED = TopicSpec(
    name="emeuse.chronic.alert-updated.v1",
    message=chronic.AlertUpdated,
    key="patient_pseudonym",
    owner="chronic",
    description="A further abnormal reading joined an open alert's episode.",
    retention_days=90,
    required=("alert_id", "patient_pseudonym", "rule", "updated_at"),
)
ALERT_ESCALATED = TopicSpec(
    name="emeuse.chronic.alert-escalated.v1",
    message=chronic.AlertEscalated,
    key="patient_pseudonym",
    owner="chronic",
    description="An unacknowledged alert went to the next care-team member.",
    retention_days=90,
    required=("alert_id", "patient_pseudonym", "notified", "escalated_at"),
)
ALERT_ACKNOWLEDGED = TopicSpec(
    name="emeuse.chronic.alert-acknowledged.v1",
    message=chronic.AlertAcknowledged,
    key="patient_pseudonym",
    owner="chronic",
    description="A care-team member took charge of an alert.",
    retention_days=90,
    required=("alert_id", "patient_pseudonym", "member_id", "acknowledged_at"),
)
ALERT_RESOLVED = TopicSpec(
    name="emeuse.chronic.alert-resolved.v1",
    message=chronic.AlertResolved,
    key="patient_pseudonym",
    owner="chronic",
    description="An alert episode closed, with how it ended.",
    retention_days=90,
    required=("alert_id", "patient_pseudonym", "resolved_at"),
)
ALERT_ACTION_REQUESTED = TopicSpec(
    name="emeuse.chronic.alert-action-requested.v1",
    message=chronic.AlertActionRequested,
    key="patient_pseudonym",
    owner="chronic",
    description="Acknowledge, resolve, or a timer fell due: input of the alerts' single writer.",
    retention_days=7,
    required=("action_id", "patient_pseudonym", "requested_at"),
)
POINT_OF_CARE_REVIEWED = TopicSpec(
    name="emeuse.chronic.point-of-care-reviewed.v1",
    message=chronic.PointOfCareResultReviewed,
    key="patient_pseudonym",
    owner="chronic",
    description="The medical lab validated or rejected a point-of-care result.",
    retention_days=90,
    required=("reading_id", "patient_pseudonym", "reviewer_id", "reviewed_at"),
)
# Access: a territory's agenda has one writer, so every access topic is keyed by territory
# (département code); events about a patient carry the pseudonym as their subject. Each is
# partitioned by AGENDA_PARTITION of its territory: the agenda's tables, and evaluation's
# requests waiting, follow it (services/access/state.py, services/evaluation/unmet.py).
AGENDA_PARTITION = "agenda-{}"
PRACTITIONER_REGISTERED = TopicSpec(
    name="emeuse.access.practitioner-registered.v1",
    message=access.PractitionerRegistered,
    key="territory",
    owner="access",
    description="A practitioner joined or changed in a territory's directory.",
    retention_days=None,
    subject="",
    required=("practitioner_id", "territory", "place"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
# Kept forever, not compacted: the key is the territory, so compaction would keep one
# place per territory, not one per place.
PLACE_REGISTERED = TopicSpec(
    name="emeuse.access.place-registered.v1",
    message=access.PlaceRegistered,
    key="territory",
    owner="access",
    description="A place (EHPAD, pharmacy cabin, health centre...) joined or changed in a "
    "territory's directory.",
    retention_days=None,
    subject="",
    required=("territory", "place"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
AVAILABILITY_PUBLISHED = TopicSpec(
    name="emeuse.access.availability-published.v1",
    message=access.AvailabilityPublished,
    key="territory",
    owner="access",
    description="A practitioner published consultation slots.",
    retention_days=90,
    subject="",
    required=("practitioner_id", "territory"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
CONSULTATION_REQUESTED = TopicSpec(
    name="emeuse.access.consultation-requested.v1",
    message=access.ConsultationRequested,
    key="territory",
    owner="access",
    description="A remote consultation was requested for a patient.",
    retention_days=365,
    subject="patient_pseudonym",
    required=("request_id", "territory", "patient_pseudonym", "reason_code", "requested_at"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
SLOT_BOOKED = TopicSpec(
    name="emeuse.access.slot-booked.v1",
    message=access.SlotBooked,
    key="territory",
    owner="access",
    description="A request got a practitioner's slot.",
    retention_days=365,
    subject="patient_pseudonym",
    required=("booking_id", "territory", "request_id", "slot_id", "booked_at"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
CONSULTATION_STATUS_CHANGED = TopicSpec(
    name="emeuse.access.consultation-status-changed.v1",
    message=access.ConsultationStatusChanged,
    key="territory",
    owner="access",
    description="A booked consultation was confirmed, cancelled, started, completed or missed.",
    retention_days=365,
    subject="patient_pseudonym",
    required=("booking_id", "territory", "changed_at"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
REQUEST_FLAGGED = TopicSpec(
    name="emeuse.access.request-flagged.v1",
    message=access.RequestFlagged,
    key="territory",
    owner="access",
    description="A request waited past its urgency's delay; the care coordinator is told.",
    retention_days=365,
    subject="patient_pseudonym",
    required=("request_id", "territory", "flagged_at"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
REQUEST_WITHDRAWN = TopicSpec(
    name="emeuse.access.request-withdrawn.v1",
    message=access.RequestWithdrawn,
    key="territory",
    owner="access",
    description="A waiting request was withdrawn (patient, coordinator, no longer needed).",
    retention_days=365,
    subject="patient_pseudonym",
    required=("request_id", "territory", "reason", "withdrawn_at"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
BOOKING_ACTION_REQUESTED = TopicSpec(
    name="emeuse.access.booking-action-requested.v1",
    message=access.BookingActionRequested,
    key="territory",
    owner="access",
    description="Book, confirm, reschedule, cancel, outcome, or a delay ran out: agenda input.",
    retention_days=30,
    subject="",
    required=("action_id", "territory", "requested_at"),
    partition_by="territory",
    partition_format=AGENDA_PARTITION,
)
SENSOR_EVENT_REPORTED = TopicSpec(
    name="emeuse.home.sensor-event-reported.v1",
    message=home.SensorEventReported,
    key="resident_pseudonym",
    owner="home",
    description="A connected-home device reported something in a resident's home.",
    retention_days=14,
    required=("sensor_event_id", "resident_pseudonym", "device_id", "occurred_at"),
)
HOME_CONFIGURED = TopicSpec(
    name="emeuse.home.home-configured.v1",
    message=home.HomeConfigured,
    key="resident_pseudonym",
    owner="home",
    description="A home was enrolled or its configuration (devices, contacts, rhythm) changed.",
    compacted=True,
    retention_days=None,
    required=("resident_pseudonym",),
)
INCIDENT_RAISED = TopicSpec(
    name="emeuse.home.incident-raised.v1",
    message=home.IncidentRaised,
    key="resident_pseudonym",
    owner="home",
    description="Something in a home needs a contact to answer (fall, panic, inactivity...).",
    retention_days=90,
    required=("incident_id", "resident_pseudonym", "raised_at"),
)
INCIDENT_ESCALATED = TopicSpec(
    name="emeuse.home.incident-escalated.v1",
    message=home.IncidentEscalated,
    key="resident_pseudonym",
    owner="home",
    description="An unacknowledged incident went to the next contact (up to the SAMU).",
    retention_days=90,
    required=("incident_id", "resident_pseudonym", "notified", "escalated_at"),
)
INCIDENT_ACKNOWLEDGED = TopicSpec(
    name="emeuse.home.incident-acknowledged.v1",
    message=home.IncidentAcknowledged,
    key="resident_pseudonym",
    owner="home",
    description="A contact took charge of an incident; its escalation stopped.",
    retention_days=90,
    required=("incident_id", "resident_pseudonym", "contact_id", "acknowledged_at"),
)
INCIDENT_RESOLVED = TopicSpec(
    name="emeuse.home.incident-resolved.v1",
    message=home.IncidentResolved,
    key="resident_pseudonym",
    owner="home",
    description="An incident closed, with its outcome and whether the resident was injured.",
    retention_days=90,
    required=("incident_id", "resident_pseudonym", "resolved_at"),
)
INCIDENT_ACTION_REQUESTED = TopicSpec(
    name="emeuse.home.incident-action-requested.v1",
    message=home.IncidentActionRequested,
    key="resident_pseudonym",
    owner="home",
    description="Acknowledge, resolve, or a timer fell due: input of the incidents' single writer.",
    retention_days=7,
    required=("action_id", "resident_pseudonym", "requested_at"),
)
VISIT_PLANNED = TopicSpec(
    name="emeuse.home.visit-planned.v1",
    message=home.VisitPlanned,
    key="resident_pseudonym",
    owner="home",
    description="A home-aide visit was planned.",
    retention_days=90,
    required=("visit_id", "resident_pseudonym", "aide_id", "planned_start", "planned_duration"),
)
VISIT_STARTED = TopicSpec(
    name="emeuse.home.visit-started.v1",
    message=home.VisitStarted,
    key="resident_pseudonym",
    owner="home",
    description="A home aide arrived for a visit.",
    retention_days=90,
    required=("visit_id", "resident_pseudonym", "aide_id", "checked_in_at"),
)
VISIT_ENDED = TopicSpec(
    name="emeuse.home.visit-ended.v1",
    message=home.VisitEnded,
    key="resident_pseudonym",
    owner="home",
    description="A home aide left at the end of a visit.",
    retention_days=90,
    required=("visit_id", "resident_pseudonym", "aide_id", "checked_out_at"),
)
# Prevention: a person's state has one writer, so every person topic is keyed by the
# pseudonym (co-partitioned with chronic's care plans, which it also reads). Campaigns
# concern no person: their definitions are keyed by campaign and read whole by every instance.
PERSON_ENROLLED = TopicSpec(
    name="emeuse.prevention.person-enrolled.v1",
    message=prevention.PersonEnrolled,
    key="person_pseudonym",
    owner="prevention",
    description="A person joined the prevention programme with their preferences.",
    compacted=True,
    retention_days=None,
    required=("person_pseudonym",),
)
PREFERENCES_UPDATED = TopicSpec(
    name="emeuse.prevention.preferences-updated.v1",
    message=prevention.PreferencesUpdated,
    key="person_pseudonym",
    owner="prevention",
    description="An enrolled person changed their channels, quiet hours or language.",
    retention_days=365,
    required=("person_pseudonym", "change_id"),
)
OPT_OUT_RECORDED = TopicSpec(
    name="emeuse.prevention.opt-out-recorded.v1",
    message=prevention.OptOutRecorded,
    key="person_pseudonym",
    owner="prevention",
    description="A person refused messages on some channels, or all messages.",
    # Kept for good: the proof of the person's choice.
    retention_days=None,
    required=("person_pseudonym", "opt_out_id"),
)
PROGRAMME_STARTED = TopicSpec(
    name="emeuse.prevention.programme-started.v1",
    message=prevention.ProgrammeStarted,
    key="person_pseudonym",
    owner="prevention",
    description="A person joined a programme (pregnancy, parental coaching...) or its date moved.",
    retention_days=365,
    required=("person_pseudonym", "start_id", "programme"),
)
PROGRAMME_ENDED = TopicSpec(
    name="emeuse.prevention.programme-ended.v1",
    message=prevention.ProgrammeEnded,
    key="person_pseudonym",
    owner="prevention",
    description="A person's programme stopped (a birth, the end of a pregnancy, a withdrawal).",
    retention_days=365,
    required=("person_pseudonym", "end_id", "programme", "reason"),
)
CAMPAIGN_UPDATED = TopicSpec(
    name="emeuse.prevention.campaign-updated.v1",
    message=prevention.CampaignUpdated,
    key="campaign_id",
    owner="prevention",
    description="A campaign was created or changed (design, approval, pause, end).",
    compacted=True,
    retention_days=None,
    subject="",
    required=("campaign_id", "version", "write_id", "status"),
)
PERSON_ACTION_REQUESTED = TopicSpec(
    name="emeuse.prevention.person-action-requested.v1",
    message=prevention.PersonActionRequested,
    key="person_pseudonym",
    owner="prevention",
    description="Target a campaign, send a due message, follow up a consultation: person input.",
    retention_days=7,
    required=("action_id", "person_pseudonym", "action", "requested_at"),
)
MESSAGE_SCHEDULED = TopicSpec(
    name="emeuse.prevention.message-scheduled.v1",
    message=prevention.MessageScheduled,
    key="person_pseudonym",
    owner="prevention",
    description="A message was planned for a person, or planned again for another time.",
    retention_days=90,
    required=("message_id", "person_pseudonym", "template_id", "due_at"),
)
MESSAGE_DELIVERY_REQUESTED = TopicSpec(
    name="emeuse.prevention.message-delivery-requested.v1",
    message=prevention.MessageDeliveryRequested,
    key="person_pseudonym",
    owner="prevention",
    description="A message to deliver, for the delivery partners (app, SMS, e-mail).",
    retention_days=30,
    required=("message_id", "person_pseudonym", "channel", "template_id", "attempt"),
)
MESSAGE_CANCELLED = TopicSpec(
    name="emeuse.prevention.message-cancelled.v1",
    message=prevention.MessageCancelled,
    key="person_pseudonym",
    owner="prevention",
    description="A scheduled message will not be sent (opt-out, programme ended, campaign over).",
    retention_days=90,
    required=("message_id", "person_pseudonym", "reason_code"),
)
DELIVERY_RECEIPT_REPORTED = TopicSpec(
    name="emeuse.prevention.delivery-receipt-reported.v1",
    message=prevention.DeliveryReceiptReported,
    key="person_pseudonym",
    owner="prevention",
    description="A delivery partner reported a message delivered, opened, clicked or failed.",
    retention_days=90,
    required=("receipt_id", "message_id", "person_pseudonym", "status"),
)
PREVENTION_ACTION_RECORDED = TopicSpec(
    name="emeuse.prevention.prevention-action-recorded.v1",
    message=prevention.PreventionActionRecorded,
    key="person_pseudonym",
    owner="prevention",
    description="A person acted on a screening or vaccination reminder (a screening, a dose).",
    # What the evaluation counts as reminders acted on: kept as long as the reminders' story.
    retention_days=365,
    required=("action_id", "person_pseudonym", "programme", "kind", "acted_at"),
)

# Partners: the registry of partners and patients' consents (issue 7).
PARTNER_REGISTERED = TopicSpec(
    name="emeuse.partners.partner-registered.v1",
    message=partners.PartnerRegistered,
    key="partner_id",
    owner="partners",
    description="A partner was added, changed (grants) or removed.",
    compacted=True,
    retention_days=None,
    subject="",
    required=("partner_id", "registered_at"),
)
CONSENT_CHANGED = TopicSpec(
    name="emeuse.partners.consent-changed.v1",
    message=partners.ConsentChanged,
    key="patient_pseudonym|partner_id|purpose",
    owner="partners",
    description="A patient granted or withdrew consent to a partner for a purpose.",
    compacted=True,
    retention_days=None,
    subject="patient_pseudonym",
    partition_by="patient_pseudonym",
    required=("patient_pseudonym", "partner_id", "purpose", "changed_at"),
)

# What each partner's feed was given: the gateway's record of its own fan-out, so the
# evaluation counts events consumed per partner from the bus (feeds are per-partner topics
# holding every type, which no service declares as an input).
EVENT_SHARED = TopicSpec(
    name="emeuse.partners.event-shared.v1",
    message=partners.EventShared,
    key="patient_pseudonym",
    owner="partners",
    description="The gateway put an event in the feeds of one or more partners, under consent.",
    required=("patient_pseudonym", "event_id", "event_type", "shared_at"),
)

PATIENT_DATA_ACCESSED = TopicSpec(
    name="emeuse.audit.patient-data-accessed.v1",
    message=audit.PatientDataAccessed,
    key="subject_pseudonym",
    owner="audit",
    description=(
        "A gRPC caller read or changed, or was refused reading or changing, a person's data:"
        " who, which role, which method, the outcome; no payload. Written by every service;"
        " read by operators and auditors (`emeuse audit`)."
    ),
    # Ten years, the programme's length: who touched a person's data stays answerable.
    retention_days=3660,
    required=("call_id", "caller_id", "service", "method", "subject_pseudonym", "outcome"),
)

# The four services of the axes, the partner gateway (consent-filtered feeds, inbound) and
# the evaluation (indicators per experiment, territory and month).
# Coordination: a person's timeline across the axes. Access's events are keyed by
# territory; the coordination service re-keys them by person through this topic, so a
# person's whole timeline is kept on the person's partition (services/coordination/).
TIMELINE_ENTRY_RECORDED = TopicSpec(
    name="emeuse.coordination.timeline-entry-recorded.v1",
    message=coordination.TimelineEntryRecorded,
    key="person_pseudonym",
    owner="coordination",
    description="A fact of an axis about one person, re-keyed by the person for their timeline.",
    retention_days=7,
    required=("person_pseudonym", "entry"),
)

SERVICES = ("prevention", "chronic", "access", "home", "gateway", "evaluation", "coordination")
# Who owns topics: the four services, the partner registry and consents (issue 7), and the
# audit trail every service writes (issue 13).
OWNERS = (*SERVICES, "partners", "audit")

TOPICS: tuple[TopicSpec, ...] = (
    CARE_PLAN_UPDATED,
    READING_RECORDED,
    READING_CORRECTED,
    ALERT_RAISED,
    ALERT_UPDATED,
    ALERT_ESCALATED,
    ALERT_ACKNOWLEDGED,
    ALERT_RESOLVED,
    ALERT_ACTION_REQUESTED,
    POINT_OF_CARE_REVIEWED,
    PRACTITIONER_REGISTERED,
    PLACE_REGISTERED,
    AVAILABILITY_PUBLISHED,
    CONSULTATION_REQUESTED,
    SLOT_BOOKED,
    CONSULTATION_STATUS_CHANGED,
    REQUEST_FLAGGED,
    REQUEST_WITHDRAWN,
    BOOKING_ACTION_REQUESTED,
    HOME_CONFIGURED,
    SENSOR_EVENT_REPORTED,
    INCIDENT_RAISED,
    INCIDENT_ESCALATED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_RESOLVED,
    INCIDENT_ACTION_REQUESTED,
    VISIT_PLANNED,
    VISIT_STARTED,
    VISIT_ENDED,
    PERSON_ENROLLED,
    PREFERENCES_UPDATED,
    OPT_OUT_RECORDED,
    PROGRAMME_STARTED,
    PROGRAMME_ENDED,
    CAMPAIGN_UPDATED,
    PERSON_ACTION_REQUESTED,
    MESSAGE_SCHEDULED,
    MESSAGE_DELIVERY_REQUESTED,
    MESSAGE_CANCELLED,
    DELIVERY_RECEIPT_REPORTED,
    PREVENTION_ACTION_RECORDED,
    PARTNER_REGISTERED,
    CONSENT_CHANGED,
    EVENT_SHARED,
    PATIENT_DATA_ACCESSED,
    TIMELINE_ENTRY_RECORDED,
    *(dead_letter_topic(service) for service in SERVICES),
)


# The services whose events partners may be granted (not the gateway's own dead letters).
AXES = ("prevention", "chronic", "access", "home")


def partner_feedable(spec: TopicSpec) -> bool:
    """Whether the gateway can put this topic's events in partners' feeds: keyed by the
    person, so co-partitioned with the consents. Access's territory-keyed agenda is not."""
    return (
        spec.owner in AXES
        and not spec.is_dead_letter
        and spec.key.endswith("_pseudonym")
        and spec.partition_by is None
    )


# What only the owning service writes, whatever a partner is granted (issue 17): what
# steers its decisions about a person or a population, its own decisions, and the commands
# its single writer takes (sent through its gRPC API, which checks the caller's role).
# Partners bring what is observed or asked from outside: readings and corrections, sensor
# reports, visits, the directory and slots, consultation requests, prevention's enrolments,
# preferences, opt-outs, programmes, delivery receipts and actions on reminders (a lab or a
# pharmacy reports a screening done or a dose given). Each reason is what
# `emeuse partner add|grant` and the gateway say when they refuse.
_AUTHORITY: tuple[tuple[str, tuple[TopicSpec, ...]], ...] = (
    (
        "a care plan sets a patient's clinical thresholds and care team",
        (CARE_PLAN_UPDATED,),
    ),
    (
        "a home's configuration sets its devices, the contacts called in an emergency and "
        "the detection thresholds",
        (HOME_CONFIGURED,),
    ),
    (
        "a campaign, once approved, decides who the platform messages",
        (CAMPAIGN_UPDATED,),
    ),
    (
        "a point-of-care result is validated by the lab on the patient's care team, through "
        "chronic's API",
        (POINT_OF_CARE_REVIEWED,),
    ),
    (
        "alerts, incidents, bookings and messages are the service's own decisions",
        (
            ALERT_RAISED,
            ALERT_UPDATED,
            ALERT_ESCALATED,
            ALERT_ACKNOWLEDGED,
            ALERT_RESOLVED,
            INCIDENT_RAISED,
            INCIDENT_ESCALATED,
            INCIDENT_ACKNOWLEDGED,
            INCIDENT_RESOLVED,
            SLOT_BOOKED,
            CONSULTATION_STATUS_CHANGED,
            REQUEST_FLAGGED,
            REQUEST_WITHDRAWN,
            MESSAGE_SCHEDULED,
            MESSAGE_DELIVERY_REQUESTED,
            MESSAGE_CANCELLED,
        ),
    ),
    (
        "the commands of the service's single writer come through its gRPC API, which "
        "checks the caller's role",
        (
            ALERT_ACTION_REQUESTED,
            INCIDENT_ACTION_REQUESTED,
            BOOKING_ACTION_REQUESTED,
            PERSON_ACTION_REQUESTED,
        ),
    ),
)
SERVICE_AUTHORITY: dict[str, str] = {
    spec.name: reason for reason, specs in _AUTHORITY for spec in specs
}


def authority_reason(spec: TopicSpec) -> str | None:
    """Why only the owning service writes this topic; None when a partner may be granted it."""
    return SERVICE_AUTHORITY.get(spec.name)


def partner_publishable(spec: TopicSpec) -> bool:
    """Whether a partner may be granted publishing this topic's events (the gateway admits
    them from its inbound topic and writes them here): an axis's events, not dead letters,
    not the services' own authority (SERVICE_AUTHORITY)."""
    return spec.owner in AXES and not spec.is_dead_letter and spec.name not in SERVICE_AUTHORITY


class UnknownTopicError(LookupError):
    """A topic or event type the registry does not hold."""


def by_name(name: str) -> TopicSpec:
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise UnknownTopicError(f"unknown topic {name!r}; `emeuse topics` lists them")


def for_type(type_name: str) -> list[TopicSpec]:
    """Topics that carry a message type (dead letters have one topic per service)."""
    specs = [spec for spec in TOPICS if spec.type_name == type_name]
    if not specs:
        known = ", ".join(sorted({spec.type_name for spec in TOPICS}))
        raise UnknownTopicError(f"unknown event type {type_name!r}; known types: {known}")
    return specs


def owned_by(owner: str) -> Iterable[TopicSpec]:
    return (spec for spec in TOPICS if spec.owner == owner)
