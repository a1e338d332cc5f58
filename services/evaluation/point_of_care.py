"""Point-of-care INR: an alert raised by a capillary result, told apart from the lab's.

A reading says whether it is a point-of-care result; the alert it raises (once the medical
lab validates it) names the reading in `reading_ids` but does not say so. Each patient's
point-of-care readings not yet named by an alert are kept (keyed by the pseudonym, on the
patient's partition like every chronic event), the last 20, until an alert names one.
"""

from __future__ import annotations

from typing import Any

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.kernel.tx import Tx

POINT_OF_CARE = "patient_point_of_care_readings"
# A patient measures a few times a week; an unreviewed result older than 20 others is lost.
KEPT = 20
# Capillary (34714-6) and lab (6301-6) INR: chronic files a capillary INR under the
# care plan's code, which may be the lab's.
INR_CODES = frozenset({"34714-6", "6301-6"})


def follow(message: Any, tx: Tx) -> bool:
    """Keep a point-of-care reading; for an alert, whether a point-of-care INR raised it."""
    if isinstance(message, ReadingRecorded) and message.point_of_care:
        kept: list[str] = tx.get(POINT_OF_CARE, message.patient_pseudonym) or []
        tx.put(POINT_OF_CARE, message.patient_pseudonym, [*kept, message.reading_id][-KEPT:])
    elif isinstance(message, AlertRaised):
        kept = tx.get(POINT_OF_CARE, message.patient_pseudonym) or []
        left = [r for r in kept if r not in message.reading_ids]
        if len(left) == len(kept):
            return False
        if left:
            tx.put(POINT_OF_CARE, message.patient_pseudonym, left)
        else:
            tx.delete(POINT_OF_CARE, message.patient_pseudonym)
        return message.loinc_code in INR_CODES
    return False
