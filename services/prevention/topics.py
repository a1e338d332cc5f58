"""Topics the prevention service reads and writes (declared in emeuse.registry)."""

from emeuse.registry import PERSON_ENROLLED, REMINDER_SCHEDULED

READS = (PERSON_ENROLLED,)
WRITES = (REMINDER_SCHEDULED,)
