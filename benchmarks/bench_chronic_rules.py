"""Cost of chronic's per-reading and per-second work, with a patient's state at its bounds.

Run with `make bench`; no broker needed. A reading is what the `monitor_patients` agent
does for it: state from the table's JSON, every rule, state back to JSON. A timer scan is
what `fire_due_timers` does each second for each enrolled patient it owns.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from google.protobuf import json_format

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, ReadingRecorded
from emeuse.runtime.pseudonym import random_pseudonym
from services.chronic.alerts import due_actions
from services.chronic.care_plan import plan_in_force, record_care_plan
from services.chronic.domain.monitoring import PatientState
from services.chronic.handlers import evaluate_reading

ROUNDS = 2_000
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def rate(name: str, step: Callable[[], object], rounds: int = ROUNDS) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        step()
    per_second = rounds / (time.perf_counter() - started)
    print(f"{name:40} {per_second:>10,.0f} /s")
    return per_second


def main() -> None:
    patient = random_pseudonym()
    plan_message = json_format.ParseDict(
        {
            "patient_pseudonym": patient,
            "care_plan_id": "cp-bench",
            "programme": "MONITORING_PROGRAMME_HEART_FAILURE",
            "thresholds": [
                {
                    "loinc_code": code,
                    "unit": unit,
                    "low": low,
                    "high": high,
                    "critical_low": low / 2,
                    "critical_high": high * 2,
                    "expected_every": "86400s",
                }
                for code, unit, low, high in (
                    ("29463-7", "kg", 50, 110),
                    ("8867-4", "/min", 50, 110),
                    ("8480-6", "mm[Hg]", 90, 160),
                )
            ],
            "care_team": [
                {"member_id": "gp-1", "role": "CARE_ROLE_GP", "escalation_rank": 1},
                {"member_id": "ide-2", "role": "CARE_ROLE_NURSE", "escalation_rank": 2},
            ],
            "acknowledge_within": "1800s",
        },
        CarePlanUpdated(),
    )
    plan = plan_in_force(
        record_care_plan(plan_message, previous=None, territory="55", recorded_at=NOW)
    )
    counter = itertools.count()

    def reading() -> ReadingRecorded:
        n = next(counter)
        message = ReadingRecorded(
            reading_id=f"r-{n}",
            patient_pseudonym=patient,
            loinc_code=("29463-7", "8867-4", "8480-6")[n % 3],
            value=(80 + n % 5, 120, 150)[n % 3],  # heart rate out of range: an open episode
            unit=("kg", "/min", "mm[Hg]")[n % 3],
            device_id="bench-device",
        )
        message.measured_at.FromDatetime(NOW - timedelta(hours=6) + timedelta(seconds=n))
        return message

    # Fill the state to its bounds (history, ids seen), as for a patient followed for months.
    state = PatientState()
    for _ in range(600):
        state = evaluate_reading(reading(), plan=plan, state=state, now=NOW, territory="55").state
    stored = state.to_json()

    def one_reading() -> None:
        nonlocal stored
        outcome = evaluate_reading(
            reading(), plan=plan, state=PatientState.from_json(stored), now=NOW, territory="55"
        )
        stored = outcome.state.to_json()

    readings = rate("reading judged (state in and out)", one_reading)
    scans = rate(
        "patient scanned by the timer",
        lambda: due_actions(patient, plan, PatientState.from_json(stored), NOW),
    )
    # Targets: 1,000 readings/s per core for one patient partition's worst-case state; a
    # timer round over 5,000 patients within its 1 s interval.
    assert readings > 1_000, f"readings too slow: {readings:,.0f}/s"
    assert scans > 5_000, f"timer scan too slow: {scans:,.0f} patients/s"


if __name__ == "__main__":
    main()
