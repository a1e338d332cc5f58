"""Topics the evaluation service reads (declared in emeuse.registry): it publishes no event,
it answers indicators over gRPC. Its Kafka ACLs are drawn from KAFKA (emeuse.runtime.acls)."""

from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    CONSENT_CHANGED,
    CONSULTATION_REQUESTED,
    CONSULTATION_STATUS_CHANGED,
    DELIVERY_RECEIPT_REPORTED,
    EVENT_SHARED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_ESCALATED,
    INCIDENT_RAISED,
    OPT_OUT_RECORDED,
    READING_RECORDED,
    REQUEST_FLAGGED,
    SLOT_BOOKED,
)
from emeuse.runtime.acls import KafkaUse

# The kernel's inputs (processing.PROCESSOR).
INPUTS = (
    READING_RECORDED,
    ALERT_RAISED,
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    CONSULTATION_REQUESTED,
    SLOT_BOOKED,
    CONSULTATION_STATUS_CHANGED,
    REQUEST_FLAGGED,
    INCIDENT_RAISED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_ESCALATED,
    DELIVERY_RECEIPT_REPORTED,
    OPT_OUT_RECORDED,
    CONSENT_CHANGED,
    EVENT_SHARED,
)

KAFKA = KafkaUse("evaluation", reads=INPUTS)
