"""Topics the chronic service reads and writes (declared in emeuse.registry); its Kafka ACLs
are drawn from KAFKA (emeuse.runtime.acls)."""

from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ACTION_REQUESTED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_RESOLVED,
    ALERT_UPDATED,
    CARE_PLAN_UPDATED,
    POINT_OF_CARE_REVIEWED,
    READING_CORRECTED,
    READING_RECORDED,
)
from emeuse.runtime.acls import KafkaUse

# The kernel's inputs (processing.PROCESSOR).
READS = (
    CARE_PLAN_UPDATED,
    READING_RECORDED,
    READING_CORRECTED,
    POINT_OF_CARE_REVIEWED,
    ALERT_ACTION_REQUESTED,
)
WRITES = (
    ALERT_RAISED,
    ALERT_UPDATED,
    ALERT_ESCALATED,
    ALERT_ACKNOWLEDGED,
    ALERT_RESOLVED,
    ALERT_ACTION_REQUESTED,
    POINT_OF_CARE_REVIEWED,
    CARE_PLAN_UPDATED,
    READING_RECORDED,
    READING_CORRECTED,
)

KAFKA = KafkaUse("chronic", reads=READS, writes=WRITES)
