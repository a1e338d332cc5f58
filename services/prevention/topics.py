"""Topics the prevention service reads and writes (declared in emeuse.registry)."""

from emeuse.registry import (
    CAMPAIGN_UPDATED,
    CARE_PLAN_UPDATED,
    CONSULTATION_STATUS_CHANGED,
    DELIVERY_RECEIPT_REPORTED,
    MESSAGE_CANCELLED,
    MESSAGE_DELIVERY_REQUESTED,
    MESSAGE_SCHEDULED,
    OPT_OUT_RECORDED,
    PERSON_ACTION_REQUESTED,
    PERSON_ENROLLED,
    PREFERENCES_UPDATED,
    PREVENTION_ACTION_RECORDED,
    PROGRAMME_ENDED,
    PROGRAMME_STARTED,
)
from emeuse.runtime.acls import KafkaUse

# Every topic keyed by the person's pseudonym: one channel, one writer per person.
PERSON_INPUTS = (
    PERSON_ENROLLED,
    PREFERENCES_UPDATED,
    OPT_OUT_RECORDED,
    PROGRAMME_STARTED,
    PROGRAMME_ENDED,
    PERSON_ACTION_REQUESTED,
    DELIVERY_RECEIPT_REPORTED,
    CARE_PLAN_UPDATED,
    PREVENTION_ACTION_RECORDED,
)
# The kernel's inputs (processing.processor).
READS = (*PERSON_INPUTS, CONSULTATION_STATUS_CHANGED)
# What every instance reads whole: the campaign directory (campaigns.py), and the care plans
# for who is on each person's care team (runtime/care_teams.py).
FOLLOWS = (CAMPAIGN_UPDATED, CARE_PLAN_UPDATED)
WRITES = (
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
    # Published by RecordPreventionAction (partners may be granted it too); read back above.
    PREVENTION_ACTION_RECORDED,
)

KAFKA = KafkaUse("prevention", reads=READS, writes=WRITES, follows=FOLLOWS)
