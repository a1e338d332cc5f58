"""What the timer decides has no event to inherit an experiment from: a monitoring gap and
an overdue lab review are published in the experiment the patient is enrolled in (the care
plan's), as escalations are (test_escalation.py), not in the service's own."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import Tx
from emeuse.registry import ALERT_RAISED, dead_letter_topic
from emeuse.runtime import envelope as env
from emeuse.runtime.envelope import CODE_OF_TERRITORY
from services.chronic.care_plan import record_care_plan
from services.chronic.domain.monitoring import PatientState
from services.chronic.processing import CARE_PLANS, STATES, take_due_steps
from tests.unit.chronic.plans import INR, NOW, PATIENT, TERRITORY, anticoagulation_plan, in_force
from tests.unit.chronic.readings import evaluate, reading

EXPERIMENT = "telesuivi-meuse"


def fired(state: PatientState, at_hours: float) -> list[tuple[str, str, str]]:
    """The alerts the timer raises at NOW + `at_hours`: rule, experiment, territory."""
    stored_plan = record_care_plan(
        anticoagulation_plan(),
        previous=None,
        territory=TERRITORY,
        recorded_at=NOW,
        experiment=EXPERIMENT,
    )
    store = {(CARE_PLANS, PATIENT): stored_plan, (STATES, PATIENT): state}
    tx = Tx(
        0,
        Origin("chronic", "emeuse/chronic", "emeuse-platform"),
        dead_letter_topic("chronic"),
        lambda table, key: store.get((table, key)),
        lambda table, key: 0,
    )
    tx.now = NOW + timedelta(hours=at_hours)
    asyncio.run(take_due_steps(PATIENT, tx))
    out = []
    for record in tx.outputs:
        if record.topic == ALERT_RAISED.name:
            envelope = env.from_headers(record.headers)
            message = ALERT_RAISED.message.FromString(record.value)
            out.append(
                (message.rule, envelope.experiment_id, CODE_OF_TERRITORY[envelope.territory])
            )
    return out


def test_a_monitoring_gap_the_timer_finds_is_in_the_patient_s_experiment():
    gaps = fired(PatientState(), at_hours=24 * 10)
    assert gaps and {(experiment, territory) for _, experiment, territory in gaps} == {
        (EXPERIMENT, TERRITORY)
    }
    assert {rule for rule, _, _ in gaps} == {"monitoring.gap"}


def test_a_point_of_care_result_not_reviewed_in_time_is_in_the_patient_s_experiment():
    capillary = reading(INR, 2.5, "inr-poc-1", NOW - timedelta(minutes=5), point_of_care=True)
    pending = evaluate(capillary, in_force(anticoagulation_plan())).state
    assert "inr-poc-1" in pending.pending_review
    overdue = [a for a in fired(pending, at_hours=5) if a[0] == "point_of_care.review_overdue"]
    assert overdue == [("point_of_care.review_overdue", EXPERIMENT, TERRITORY)]
