"""Topics the home service reads and writes (declared in emeuse.registry)."""

from emeuse.registry import (
    CARE_PLAN_UPDATED,
    HOME_CONFIGURED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_ACTION_REQUESTED,
    INCIDENT_ESCALATED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    SENSOR_EVENT_REPORTED,
    VISIT_ENDED,
    VISIT_PLANNED,
    VISIT_STARTED,
)
from emeuse.runtime.acls import KafkaUse

# Co-partitioned (key: resident pseudonym): a home's records are handled by one partition
# task, in order, its single writer.
READS = (
    HOME_CONFIGURED,
    SENSOR_EVENT_REPORTED,
    VISIT_PLANNED,
    VISIT_STARTED,
    VISIT_ENDED,
    INCIDENT_ACTION_REQUESTED,
)
WRITES = (
    INCIDENT_RAISED,
    INCIDENT_ESCALATED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_RESOLVED,
    INCIDENT_ACTION_REQUESTED,
    HOME_CONFIGURED,
    VISIT_PLANNED,
    VISIT_STARTED,
    VISIT_ENDED,
)

# Every instance reads the care plans whole: who is on each resident's care team (care_teams).
FOLLOWS = (CARE_PLAN_UPDATED,)

KAFKA = KafkaUse("home", reads=READS, writes=WRITES, follows=FOLLOWS)
