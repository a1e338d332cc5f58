"""Topics the chronic service reads and writes (declared in emeuse.registry)."""

from emeuse.registry import ALERT_RAISED, CARE_PLAN_UPDATED, READING_RECORDED

READS = (CARE_PLAN_UPDATED, READING_RECORDED)
WRITES = (ALERT_RAISED,)
