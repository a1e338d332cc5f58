"""Topics the home service reads and writes (declared in emeuse.registry)."""

from emeuse.registry import INCIDENT_RAISED, SENSOR_EVENT_REPORTED

READS = (SENSOR_EVENT_REPORTED,)
WRITES = (INCIDENT_RAISED,)
