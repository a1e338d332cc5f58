"""Point-of-care INR: an alert raised by a capillary result, told apart from the lab's.

A reading says whether it is a point-of-care result; the alert it raises (once the medical
lab validates it) names the reading in `reading_ids` but does not say so. Each patient's
point-of-care readings not yet named by an alert are kept (keyed by the pseudonym, on the
patient's partition like every chronic event), the last 20, until an alert names one.

The reading and its alert are on two topics, and the kernel orders records within a topic
only: reading every topic from the start (a rebuild), an alert may come before its reading.
An INR alert that names no kept reading is therefore kept too (the last 20 of the patient),
with the cells it was counted in and its delay; a point-of-care reading it names, read
later, adds that delay to those cells, so the figure does not depend on which topic was
read first. Only a reading measured no later than the alert (`ce_time`) can have raised it;
a copy of the reading sent again keeps its time, and is counted once (the alert's delay is
spent by the first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.kernel.tx import Tx
from services.evaluation.contributions import GAP_RULE

POINT_OF_CARE = "patient_point_of_care_readings"
ALERTS_FIRST = "patient_inr_alerts_before_readings"
# A patient measures a few times a week; an unreviewed result older than 20 others is lost.
KEPT = 20
# Capillary (34714-6) and lab (6301-6) INR: chronic files a capillary INR under the
# care plan's code, which may be the lab's.
INR_CODES = frozenset({"34714-6", "6301-6"})
# A cell of an alert: (experiment, territory, period).
AlertCell = tuple[str, str, str]


@dataclass
class Followed:
    """What a chronic event means for point-of-care INR: whether an alert was raised by a
    point-of-care INR read before it, or, for a reading, the delays of the alerts read
    before it that it raised, each with the cells the alert was counted in."""

    point_of_care_inr: bool = False
    late: list[tuple[list[AlertCell], float]] = field(default_factory=list)


def may_count(alert: AlertRaised) -> bool:
    """Whether the alert would count as point-of-care INR, were its reading a capillary one
    (contributions._alert: an INR alert with a delay from measurement, not a gap)."""
    return (
        alert.loinc_code in INR_CODES
        and alert.rule != GAP_RULE
        and alert.HasField("measurement_to_alert")
        and len(alert.reading_ids) > 0
    )


def follow(message: Any, tx: Tx, cells: list[AlertCell], at_ms: int) -> Followed:
    """Keep a point-of-care reading or an alert read before its reading; `cells` are the
    event's own, `at_ms` its time (ce_time, epoch milliseconds)."""
    if isinstance(message, ReadingRecorded):
        return _reading(message, tx, at_ms)
    if isinstance(message, AlertRaised):
        return _alert(message, tx, cells, at_ms)
    return Followed()


def _reading(message: ReadingRecorded, tx: Tx, at_ms: int) -> Followed:
    patient, reading_id = message.patient_pseudonym, message.reading_id
    # Only an INR reading can be named by an INR alert: no read for the others.
    inr = message.loinc_code in INR_CODES
    waiting: list[dict[str, Any]] = (tx.get(ALERTS_FIRST, patient) if inr else None) or []
    followed, named, still = Followed(), False, []
    for alert in waiting:
        if reading_id in alert["readings"] and at_ms <= alert["at_ms"]:
            if not named and message.point_of_care and alert["seconds"] is not None:
                cells = [(c[0], c[1], c[2]) for c in alert["cells"]]
                followed.late.append((cells, alert["seconds"]))
                alert = {**alert, "seconds": None}  # counted: once, as live
            named = True
            alert = {**alert, "readings": [r for r in alert["readings"] if r != reading_id]}
        if alert["readings"]:  # counted, it still names others: they are not kept either
            still.append(alert)
    if len(still) != len(waiting) or named:
        if still:
            tx.put(ALERTS_FIRST, patient, still)
        else:
            tx.delete(ALERTS_FIRST, patient)
    if message.point_of_care and not named:
        kept: list[str] = tx.get(POINT_OF_CARE, patient) or []
        tx.put(POINT_OF_CARE, patient, [*kept, reading_id][-KEPT:])
    return followed


def _alert(message: AlertRaised, tx: Tx, cells: list[AlertCell], at_ms: int) -> Followed:
    patient = message.patient_pseudonym
    kept: list[str] = tx.get(POINT_OF_CARE, patient) or []
    left = [r for r in kept if r not in message.reading_ids]
    if len(left) != len(kept):
        if left:
            tx.put(POINT_OF_CARE, patient, left)
        else:
            tx.delete(POINT_OF_CARE, patient)
        return Followed(point_of_care_inr=message.loinc_code in INR_CODES)
    if may_count(message):
        # Its reading not read yet (a rebuild), or a lab reading (not kept): which one is
        # known when a reading it names is read, if ever.
        waiting: list[dict[str, Any]] = tx.get(ALERTS_FIRST, patient) or []
        alert = {
            "readings": list(message.reading_ids),
            "cells": [list(c) for c in cells],
            "seconds": message.measurement_to_alert.ToTimedelta().total_seconds(),
            "at_ms": at_ms,
        }
        tx.put(ALERTS_FIRST, patient, [*waiting, alert][-KEPT:])
    return Followed()
