"""A reading is placed in the care plan by what it measures, not only by its exact LOINC
code; a reading of a measure the plan does not monitor is kept, counted and shown, and one
that belongs to no plan is refused with the reason."""

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from emeuse.chronic.v1.chronic_events_pb2 import AlertSeverity, ReviewDecision
from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import Tx
from emeuse.registry import ALERT_RAISED, dead_letter_topic
from emeuse.runtime.codec import InvalidEventError
from services.chronic.care_plan import record_care_plan
from services.chronic.domain.measures import equivalent_codes
from services.chronic.grpc_api import patient_status
from services.chronic.processing import note_not_monitored
from tests.unit.chronic.plans import (
    GLUCOSE,
    GP,
    NOW,
    PATIENT,
    TERRITORY,
    anticoagulation_plan,
    in_force,
)
from tests.unit.chronic.readings import (
    correct,
    correction,
    evaluate,
    only,
    reading,
    review,
    specs,
)

CAPILLARY_INR, LAB_INR = "34714-6", "6301-6"
LAB_INR_PLAN = in_force(anticoagulation_plan(loinc=LAB_INR, nurse_first=True))
MEASURED_AT = NOW - timedelta(hours=1)


def capillary_inr(value, reading_id="poc-1"):
    return reading(CAPILLARY_INR, value, reading_id, MEASURED_AT, unit="{INR}", point_of_care=True)


def test_both_inr_codes_measure_the_same_thing():
    assert equivalent_codes(CAPILLARY_INR) == equivalent_codes(LAB_INR) == {CAPILLARY_INR, LAB_INR}
    assert equivalent_codes(GLUCOSE) == {GLUCOSE}


def test_a_capillary_inr_on_a_plan_listing_the_lab_inr_alerts_the_prescriber_once_validated():
    waiting = evaluate(capillary_inr(5.6), LAB_INR_PLAN, now=MEASURED_AT + timedelta(minutes=5))
    assert waiting.outcome == "pending_review"
    validated = review(
        "poc-1", ReviewDecision.REVIEW_DECISION_VALIDATED, plan=LAB_INR_PLAN, state=waiting.state
    )

    assert validated.outcome == "critical"
    assert specs(validated) == [ALERT_RAISED]
    alert = only(validated, ALERT_RAISED)
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert alert.notified.member_id == GP  # the prescriber, though the nurse ranks first
    assert alert.loinc_code == LAB_INR  # the plan's measure, its thresholds and episodes
    assert validated.state.latest[LAB_INR].value == 5.6


def test_a_lab_inr_on_a_plan_listing_the_capillary_inr_is_judged():
    plan = in_force(anticoagulation_plan(loinc=CAPILLARY_INR))
    outcome = evaluate(reading(LAB_INR, 1.2, "lab-1", MEASURED_AT, unit="{INR}"), plan)
    assert outcome.outcome == "critical"
    assert only(outcome, ALERT_RAISED).loinc_code == CAPILLARY_INR


def test_a_correction_of_a_capillary_inr_is_placed_like_the_reading_it_corrects():
    first = evaluate(reading(CAPILLARY_INR, 2.5, "r-1", MEASURED_AT, unit="{INR}"), LAB_INR_PLAN)
    fixed = correct(correction(CAPILLARY_INR, 5.8, "r-1", MEASURED_AT), LAB_INR_PLAN, first.state)
    assert fixed.outcome == "critical"
    assert only(fixed, ALERT_RAISED).loinc_code == LAB_INR
    assert fixed.state.latest[LAB_INR].value == 5.8


def test_a_capillary_inr_restarts_the_lab_inrs_gap_clock():
    outcome = evaluate(reading(CAPILLARY_INR, 2.5, "r-1", MEASURED_AT, unit="{INR}"), LAB_INR_PLAN)
    assert outcome.outcome == "in_range"
    assert outcome.state.last_measured_at[LAB_INR] == MEASURED_AT


def test_a_measure_the_plan_does_not_monitor_is_kept_and_shown_to_the_care_team():
    inr = evaluate(reading(CAPILLARY_INR, 2.5, "r-1", MEASURED_AT, unit="{INR}"), LAB_INR_PLAN)
    sugar = evaluate(reading(GLUCOSE, 40, "g-1", MEASURED_AT), LAB_INR_PLAN, inr.state)
    assert sugar.outcome == "not_monitored"
    assert sugar.facts == []  # never judged: no hypoglycaemia alert on an INR plan

    stored_plan = record_care_plan(
        anticoagulation_plan(loinc=LAB_INR), previous=None, territory=TERRITORY, recorded_at=NOW
    )
    status = patient_status(PATIENT, stored_plan, sugar.state, NOW)

    assert list(status.not_monitored_loinc_codes) == [GLUCOSE]
    assert {v.loinc_code: v.value for v in status.latest_values} == {GLUCOSE: 40, LAB_INR: 2.5}


def test_a_reading_not_monitored_is_counted():
    outcome = evaluate(reading(GLUCOSE, 40, "g-1", MEASURED_AT), LAB_INR_PLAN)
    labels = {"loinc": GLUCOSE}
    before = REGISTRY.get_sample_value("emeuse_chronic_readings_not_monitored_total", labels) or 0
    tx = Tx(
        0,
        Origin("chronic", "emeuse/chronic", "x"),
        dead_letter_topic("chronic"),
        lambda table, key: None,
        lambda table, key: 0,
    )
    note_not_monitored(tx, outcome, "g-1", GLUCOSE)
    # Counted once the batch that read it commits (a batch read again is not counted twice).
    assert (
        REGISTRY.get_sample_value("emeuse_chronic_readings_not_monitored_total", labels) == before
    )
    for apply in tx.committed():
        apply()
    after = REGISTRY.get_sample_value("emeuse_chronic_readings_not_monitored_total", labels)
    assert after == before + 1


def test_a_reading_of_a_patient_with_no_care_plan_is_refused_with_the_reason():
    with pytest.raises(InvalidEventError, match="not enrolled in remote monitoring"):
        evaluate(capillary_inr(5.6), None)
