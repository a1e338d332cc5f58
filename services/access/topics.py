"""Topics the access service reads and writes (declared in emeuse.registry)."""

from emeuse.registry import ALERT_RAISED, TELECONSULTATION_REQUESTED

READS = (ALERT_RAISED,)
WRITES = (TELECONSULTATION_REQUESTED,)
