"""A thousand readings for 125 patients, some delivered twice, in any order: each patient
gets exactly the alerts their values call for (one per episode), whatever the order."""

import random
from collections import defaultdict
from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertSeverity
from emeuse.registry import ALERT_RAISED, ALERT_RESOLVED, ALERT_UPDATED
from tests.unit.chronic.plans import (
    GLUCOSE,
    INR,
    NOW,
    anticoagulation_plan,
    diabetes_plan,
    in_force,
    pseudonym,
)
from tests.unit.chronic.readings import evaluate, published, reading

PATIENTS, READINGS_EACH = 125, 8
KINDS = ("in_range", "warning", "critical")
# Values by measure and kind, in the canonical unit.
VALUES = {
    INR: {
        "in_range": [(2.0, 3.0)],
        "warning": [(1.6, 1.9), (3.1, 4.9)],
        "critical": [(0.8, 1.4), (5.1, 8.0)],
    },
    GLUCOSE: {
        "in_range": [(80, 240)],
        "warning": [(56, 69), (260, 390)],
        "critical": [(20, 53), (410, 600)],
    },
}
SEVERITY = {
    "warning": AlertSeverity.ALERT_SEVERITY_WARNING,
    "critical": AlertSeverity.ALERT_SEVERITY_CRITICAL,
}


def cohort(rng):
    """Patients (pseudonym -> plan, kind, their unique readings) and the deliveries."""
    patients, deliveries = {}, []
    for n in range(PATIENTS):
        patient, kind = pseudonym(f"cohort-{n}"), KINDS[n % 3]
        loinc = INR if n % 2 else GLUCOSE
        plan = (
            anticoagulation_plan(patient=patient)
            if loinc == INR
            else diabetes_plan(patient=patient)
        )
        readings = []
        for i in range(READINGS_EACH):
            low, high = rng.choice(VALUES[loinc][kind])
            device = f"meter-{n}" if i % 2 else ""
            readings.append(
                reading(
                    loinc,
                    round(rng.uniform(low, high), 1),
                    f"{patient}-r{i}",
                    NOW - timedelta(hours=6 * (READINGS_EACH - i)),
                    device_id=device,
                    patient=patient,
                )
            )
        patients[patient] = (in_force(plan), kind, readings)
        for one in readings:
            deliveries.append(one)
            if rng.random() < 0.5:
                deliveries.append(redelivery(one, rng))
    rng.shuffle(deliveries)
    return patients, deliveries


def redelivery(one, rng):
    """The same measurement again: same id, or (from a device) resent under a new id."""
    again = type(one)()
    again.CopyFrom(one)
    if one.device_id and rng.random() < 0.5:
        again.reading_id = f"{one.reading_id}-resent"
    return again


@pytest.mark.parametrize("seed", [1, 7, 2026, 31337, 424242])
def test_each_patient_gets_one_alert_per_episode_whatever_the_order(seed):
    patients, deliveries = cohort(random.Random(seed))
    assert sum(len(readings) for _, _, readings in patients.values()) == 1000
    assert 1300 < len(deliveries) < 1700  # about half the readings delivered twice

    by_patient = defaultdict(list)
    for one in deliveries:
        by_patient[one.patient_pseudonym].append(one)

    for patient, (plan, kind, readings) in patients.items():
        state, outcomes = None, []
        for one in by_patient[patient]:
            outcome = evaluate(one, plan, state)
            state, outcomes = outcome.state, [*outcomes, outcome]

        raised = published(outcomes, ALERT_RAISED)
        duplicates = sum(o.outcome == "duplicate" for o in outcomes)
        assert duplicates == len(by_patient[patient]) - READINGS_EACH, patient
        # The latest value is the last measured, whatever arrived last.
        latest, last = state.latest[readings[0].loinc_code], readings[-1]
        assert original(latest.reading_id) == last.reading_id
        assert latest.value == pytest.approx(last.value)
        if kind == "in_range":
            assert raised == [], patient
            assert state.alerts == {}
            continue
        [alert] = raised
        assert alert.severity == SEVERITY[kind], patient
        assert published(outcomes, ALERT_RESOLVED) == []
        assert len(published(outcomes, ALERT_UPDATED)) == READINGS_EACH - 1
        [episode] = state.alerts.values()
        # Each measurement once, under whichever id reached the service first.
        assert sorted(map(original, episode.reading_ids)) == sorted(r.reading_id for r in readings)


def original(reading_id):
    return reading_id.removesuffix("-resent")
