"""Cost of chronic's per-reading and per-second work, with a patient's state at its bounds.

Run with `make bench`; no broker needed. A reading is what the patient's handler
does for it: the state object it committed (read back from the kernel's cache), every
rule, the patient's next timer deadline; when the state is not cached it is decoded first
(shown, no target). Due steps are what the timer works out at a patient's deadline.
The state is at its bounds: a patient followed for months, alerts resolved as they come.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from google.protobuf import json_format

from emeuse.chronic.v1.chronic_events_pb2 import AlertResolution, CarePlanUpdated, ReadingRecorded
from emeuse.runtime.pseudonym import random_pseudonym
from services.chronic.alerts import due_actions, resolve
from services.chronic.care_plan import plan_in_force, record_care_plan
from services.chronic.domain.monitoring import (
    DIGEST_BYTES,
    PatientState,
    decode_state,
    encode_state,
)
from services.chronic.handlers import evaluate_reading
from services.chronic.processing import CARE_PLANS, STATES, next_step_at

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
    stored_plan = record_care_plan(plan_message, previous=None, territory="55", recorded_at=NOW)
    plan = plan_in_force(stored_plan)
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

    # The state at its bounds (history, ids seen, closed alerts kept), as for a patient
    # followed for months whose care team resolves alerts as they come: the values flap, so
    # episodes open and close, and every 20th reading the open alerts are resolved.
    counted = itertools.count(1)

    def judged(state: PatientState) -> PatientState:
        state = evaluate_reading(reading(), plan=plan, state=state, now=NOW, territory="55").state
        if next(counted) % 20 == 0:
            for alert in [a for a in state.alerts.values() if a.is_open]:
                resolve(state, alert, patient, AlertResolution.ALERT_RESOLUTION_HANDLED, "gp", NOW)
        return state

    state = PatientState()
    for _ in range(1_200):
        state = judged(state)
    stored = state.to_json()
    print(
        f"state: {len(state.alerts)} alerts ({sum(a.is_open for a in state.alerts.values())} open),"
        f" {sum(len(h) for h in state.history.values())} results,"
        f" {len(state.seen) // DIGEST_BYTES} ids seen,"
        f" {len(encode_state(state)):,} bytes stored ({len(json.dumps(stored)):,} as JSON)"
    )

    # As the kernel does it: the state object it committed is read back (a shared codec),
    # the handler changes a copy, and the deadline of the next timer step is asked again.
    raw = encode_state(state)

    def one_reading() -> None:
        nonlocal state
        state = judged(state)
        next_step_at(patient, {CARE_PLANS: stored_plan, STATES: state}.get, NOW)

    def one_reading_decoded() -> None:
        nonlocal raw
        raw = encode_state(judged(decode_state(raw)))

    readings = rate("reading judged", one_reading)
    rate("reading judged, state decoded and encoded", one_reading_decoded)
    steps = rate("due steps taken for a patient", lambda: due_actions(patient, plan, state, NOW))
    # Targets: 1,000 readings/s per core for a patient's worst-case state; due steps are
    # worked out only at a patient's deadline, never for every patient each second.
    assert readings > 1_000, f"readings too slow: {readings:,.0f}/s"
    assert steps > 5_000, f"due steps too slow: {steps:,.0f} patients/s"


if __name__ == "__main__":
    main()
