"""The chronic service under faults: INR monitoring with known critical episodes.

Each patient is enrolled on an anticoagulation plan (INR band 2-3, critical above 5, a care
team of three to alert in turn, 4 s to acknowledge, a reading expected weekly so no
monitoring gap opens during a round). The stream gives every patient in-target values
(2.1-2.9: no band, no run of out-of-target values); a seeded subset of patients gets exactly
one critical value (5.5-8). So the outputs are unambiguous:
- one AlertRaised per critical value, id derived_id(patient, reading_id, "0") (the patient's
  first alert), and no AlertRaised for anyone else;
- nobody acknowledges, so each alert escalates to the 2nd then the 3rd member: one
  AlertEscalated per alert and step 1, 2, id derived_id(alert_id, "escalated", step),
  4 s then 8 s after the alert was raised;
- no AlertUpdated (no second abnormal value joins an episode).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, ReadingRecorded
from emeuse.registry import (
    ALERT_ACTION_REQUESTED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_UPDATED,
    CARE_PLAN_UPDATED,
    POINT_OF_CARE_REVIEWED,
    READING_RECORDED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from services.chronic.alerts import derived_id
from tests.chaos.kafka_io import Output
from tests.chaos.scenario import Record, Row, Scenario, Workload
from tests.integration.events import headers_for

INR = "34714-6"
ACKNOWLEDGE_WITHIN_S = 4
TEAM = [
    {"member_id": "ide-0107", "role": "CARE_ROLE_NURSE", "escalation_rank": 1},
    {"member_id": "gp-0042", "role": "CARE_ROLE_GP", "escalation_rank": 2},
    {"member_id": "coord-0009", "role": "CARE_ROLE_COORDINATOR", "escalation_rank": 3},
    {"member_id": "lab-0001", "role": "CARE_ROLE_LAB", "escalation_rank": 4},
]
# The lab validates results, it is never alerted: three to alert, so two escalation steps.
STEPS = (1, 2)
# One patient in CRITICAL_SHARE has a critical episode.
CRITICAL_SHARE = 3


def care_plan(patient: str) -> CarePlanUpdated:
    return json_format.ParseDict(
        {
            "patient_pseudonym": patient,
            "care_plan_id": f"cp-chaos-{patient[4:16]}",
            "programme": "MONITORING_PROGRAMME_ANTICOAGULATION",
            "thresholds": [
                {
                    "loinc_code": INR,
                    "unit": "{INR}",
                    "low": 2,
                    "high": 3,
                    "critical_low": 1.5,
                    "critical_high": 5,
                    "expected_every": "604800s",
                }
            ],
            "care_team": TEAM,
            "acknowledge_within": f"{ACKNOWLEDGE_WITHIN_S}s",
        },
        CarePlanUpdated(),
    )


def _record(spec: Any, message: Any, patient: str) -> Record:
    return (spec.name, patient.encode(), message.SerializeToString(), headers_for(spec, patient))


def build(rng: random.Random, patients: int, readings: int) -> Workload:
    """`patients` enrolments, then `readings` readings; a third of the patients (at least
    one) get one critical value each, at a seeded place in their sequence."""
    if readings < patients:
        raise ValueError("give every patient a reading: --readings >= --patients")
    # Pseudonyms are fresh every round (rounds share the topics); the shape is the seed's.
    who = [random_pseudonym() for _ in range(patients)]
    critical = rng.sample(who, max(1, patients // CRITICAL_SHARE))
    slots = [who[i % patients] for i in range(readings)]
    rng.shuffle(slots)
    positions: dict[str, list[int]] = {}
    for i, patient in enumerate(slots):
        positions.setdefault(patient, []).append(i)
    critical_at = {rng.choice(positions[p]): p for p in critical}
    start = datetime.now(UTC) - timedelta(seconds=readings + 3600)
    stream: list[Record] = []
    episodes: dict[str, str] = {}  # patient -> the critical reading's id
    for i, patient in enumerate(slots):
        reading_id = f"r-chaos-{i}-{patient[4:12]}"
        if i in critical_at:
            value = round(rng.uniform(5.5, 8.0), 1)
            episodes[patient] = reading_id
        else:
            value = round(rng.uniform(2.1, 2.9), 2)
        message = ReadingRecorded(
            reading_id=reading_id,
            patient_pseudonym=patient,
            loinc_code=INR,
            value=value,
            unit="{INR}",
            device_id=f"coag-{patient[4:10]}",
        )
        message.measured_at.FromDatetime(start + timedelta(seconds=i))
        stream.append(_record(READING_RECORDED, message, patient))
    setup = [_record(CARE_PLAN_UPDATED, care_plan(p), p) for p in who]
    return Workload(
        keys=who,
        setup=setup,
        stream=stream,
        expected=episodes,
        outputs_expected=len(episodes) * (1 + len(STEPS)),
        notes=[f"{len(episodes)} critical episodes among {patients} patients"],
    )


def check(workload: Workload, outputs: dict[str, list[Output]]) -> list[Row]:
    episodes: dict[str, str] = workload.expected
    ours = set(workload.keys)

    def mine(topic: str) -> list[Output]:
        return [o for o in outputs[topic] if (o.key or b"").decode() in ours]

    alert_of = {p: derived_id(p, reading_id, "0") for p, reading_id in episodes.items()}
    raised = mine(ALERT_RAISED.name)
    alerts = Row("alerts raised (one per episode)", len(episodes))
    ids = Counter(o.event_id for o in raised)
    per_patient = Counter(o.message.patient_pseudonym for o in raised)
    alerts.seen = len(per_patient.keys() & episodes.keys())
    alerts.lost = len(episodes.keys() - per_patient.keys())
    alerts.dup_by_id = sum(n - 1 for n in ids.values())
    # By meaning: a second alert for one episode, whatever its id.
    alerts.dup_by_meaning = sum(n - 1 for p, n in per_patient.items() if p in episodes)
    alerts.unexpected = sum(n for p, n in per_patient.items() if p not in episodes) + sum(
        1
        for o in raised
        if o.message.patient_pseudonym in episodes
        and (
            o.message.alert_id != alert_of[o.message.patient_pseudonym]
            or list(o.message.reading_ids) != [episodes[o.message.patient_pseudonym]]
        )
    )

    escalated = mine(ALERT_ESCALATED.name)
    expected_steps = {(alert_of[p], step) for p in episodes for step in STEPS}
    steps = Row("escalation steps (one per alert and step)", len(expected_steps))
    by_step = Counter((o.message.alert_id, o.message.step) for o in escalated)
    steps.seen = len(by_step.keys() & expected_steps)
    steps.lost = len(expected_steps - by_step.keys())
    steps.dup_by_id = sum(n - 1 for n in Counter(o.event_id for o in escalated).values())
    steps.dup_by_meaning = sum(n - 1 for k, n in by_step.items() if k in expected_steps)
    steps.unexpected = sum(n for k, n in by_step.items() if k not in expected_steps) + sum(
        1
        for o in escalated
        if o.event_id != derived_id(o.message.alert_id, "escalated", str(o.message.step))
    )

    updates = Row("alert updates (none expected)", 0)
    updated = mine(ALERT_UPDATED.name)
    updates.seen = updates.unexpected = len(updated)
    return [alerts, steps, updates]


CHRONIC = Scenario(
    service="chronic",
    inputs=(CARE_PLAN_UPDATED, READING_RECORDED, POINT_OF_CARE_REVIEWED, ALERT_ACTION_REQUESTED),
    stream_topic=READING_RECORDED,
    outputs=(ALERT_RAISED, ALERT_ESCALATED, ALERT_UPDATED),
    build=build,
    check=check,
    timers_s=ACKNOWLEDGE_WITHIN_S * len(STEPS),
)
