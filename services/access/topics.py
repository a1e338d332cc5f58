"""Topics the access service reads and writes (declared in emeuse.registry)."""

from emeuse.registry import (
    ALERT_RAISED,
    AVAILABILITY_PUBLISHED,
    BOOKING_ACTION_REQUESTED,
    CARE_PLAN_UPDATED,
    CONSULTATION_REQUESTED,
    CONSULTATION_STATUS_CHANGED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    PLACE_REGISTERED,
    PRACTITIONER_REGISTERED,
    REQUEST_FLAGGED,
    REQUEST_WITHDRAWN,
    SLOT_BOOKED,
)
from emeuse.runtime.acls import KafkaUse

# The scheduler's inputs, all keyed by territory: one partition task, one writer per territory.
AGENDA_INPUTS = (
    PRACTITIONER_REGISTERED,
    PLACE_REGISTERED,
    AVAILABILITY_PUBLISHED,
    CONSULTATION_REQUESTED,
    BOOKING_ACTION_REQUESTED,
)
READS = (ALERT_RAISED, INCIDENT_RAISED, INCIDENT_RESOLVED, *AGENDA_INPUTS)
WRITES = (
    CONSULTATION_REQUESTED,
    SLOT_BOOKED,
    CONSULTATION_STATUS_CHANGED,
    REQUEST_FLAGGED,
    REQUEST_WITHDRAWN,
    BOOKING_ACTION_REQUESTED,
    PRACTITIONER_REGISTERED,
    PLACE_REGISTERED,
    AVAILABILITY_PUBLISHED,
)

# Every instance reads the care plans whole: who is on each patient's care team (care_teams).
FOLLOWS = (CARE_PLAN_UPDATED,)

KAFKA = KafkaUse("access", reads=READS, writes=WRITES, follows=FOLLOWS)
