from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertSeverity
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import ALERT_RAISED
from emeuse.runtime.codec import InvalidEventError
from services.chronic.care_plan import record_care_plan
from services.chronic.domain.monitoring import PatientState
from services.chronic.grpc_api import summary
from services.chronic.handlers import reading_from_device
from tests.unit.chronic.plans import (
    GLUCOSE,
    INR,
    NOW,
    PATIENT,
    PLAN_RECORDED_AT,
    anticoagulation_plan,
    diabetes_plan,
    in_force,
)
from tests.unit.chronic.readings import evaluate, only, reading, specs

INR_PLAN = in_force(anticoagulation_plan())
GLUCOSE_PLAN = in_force(diabetes_plan())


def inr(value, reading_id="r-1", measured_at=NOW - timedelta(minutes=5)):
    return reading(INR, value, reading_id, measured_at)


def glucose(value, unit, reading_id="g-1", device_id="", measured_at=NOW):
    return reading(GLUCOSE, value, reading_id, measured_at, unit=unit, device_id=device_id)


def test_a_critical_inr_raises_a_critical_alert_naming_its_reading():
    outcome = evaluate(inr(5.6), INR_PLAN)
    assert outcome.outcome == "critical"
    assert specs(outcome) == [ALERT_RAISED]
    alert = only(outcome, ALERT_RAISED)
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert list(alert.reading_ids) == ["r-1"]
    assert alert.patient_pseudonym == PATIENT
    assert outcome.facts[0].event_id == alert.alert_id
    assert outcome.state.alerts_raised == 1
    assert outcome.state.last_alert_id == alert.alert_id


def test_the_same_reading_twice_is_counted_once():
    first = evaluate(inr(5.6), INR_PLAN)
    again = evaluate(inr(5.6), INR_PLAN, first.state)
    assert again.outcome == "duplicate"
    assert again.facts == []
    assert again.state == first.state


def test_a_redelivered_reading_gets_the_same_alert_id():
    one = evaluate(inr(5.6), INR_PLAN)
    other = evaluate(inr(5.6), INR_PLAN, now=NOW + timedelta(seconds=3))
    assert only(one, ALERT_RAISED).alert_id == only(other, ALERT_RAISED).alert_id


def test_a_late_reading_does_not_replace_a_newer_latest_value():
    newer = evaluate(inr(2.5, "r-new", NOW - timedelta(hours=1)), INR_PLAN)
    late = evaluate(inr(2.1, "r-old", NOW - timedelta(days=1)), INR_PLAN, newer.state)
    assert late.outcome == "in_range"
    assert late.state.latest[INR].value == 2.5
    assert [r.reading_id for r in late.state.history[INR]] == ["r-old", "r-new"]


def test_a_measure_not_in_the_plan_is_recorded_but_not_evaluated():
    outcome = evaluate(glucose(40, "mg/dL"), INR_PLAN)
    assert outcome.outcome == "not_monitored"
    assert outcome.facts == []
    assert outcome.state.latest[GLUCOSE].value == 40


def test_a_reading_of_a_patient_without_a_care_plan_is_refused():
    with pytest.raises(InvalidEventError, match="no care plan to place the reading in"):
        evaluate(inr(5.6), None)


def test_a_reading_in_a_unit_its_measure_does_not_take_is_invalid():
    bad = inr(5.6)
    bad.unit = "%"
    with pytest.raises(InvalidEventError, match=r"unit '%' is not '\{INR\}'"):
        evaluate(bad, INR_PLAN)


def test_a_reading_that_is_not_a_number_is_invalid():
    with pytest.raises(InvalidEventError, match="not a number"):
        evaluate(inr(float("nan")), INR_PLAN)


def test_the_state_survives_its_table_form():
    outcome = evaluate(inr(5.6), INR_PLAN)
    assert PatientState.from_json(outcome.state.to_json()) == outcome.state


def test_the_summary_shows_latest_values_and_alerts_from_the_tables():
    stored = record_care_plan(
        anticoagulation_plan(), previous=None, territory="55", recorded_at=PLAN_RECORDED_AT
    )
    outcome = evaluate(inr(5.6), INR_PLAN)
    response = summary(PATIENT, stored, outcome.state.to_json())
    assert response.has_care_plan
    assert [(v.loinc_code, v.value) for v in response.latest_values] == [(INR, 5.6)]
    assert response.alerts_raised == 1
    assert response.last_alert_id == only(outcome, ALERT_RAISED).alert_id


def test_the_summary_of_an_unknown_patient_is_empty():
    response = summary(PATIENT, None, None)
    assert not response.has_care_plan
    assert list(response.latest_values) == []


def test_glucose_in_mmol_per_litre_is_checked_in_mg_per_decilitre():
    outcome = evaluate(glucose(2.8, "mmol/L"), GLUCOSE_PLAN)
    assert only(outcome, ALERT_RAISED).rule == "threshold.critical_low"
    latest = outcome.state.latest[GLUCOSE]
    assert latest.unit == "mg/dL"
    assert latest.value == pytest.approx(50.4, abs=0.1)


def test_the_same_measurement_from_one_device_under_two_ids_counts_once():
    first = evaluate(glucose(50, "mg/dL", "g-a", "meter-7"), GLUCOSE_PLAN)
    again = evaluate(glucose(50, "mg/dL", "g-b", "meter-7"), GLUCOSE_PLAN, first.state)
    assert specs(first) == [ALERT_RAISED]
    assert again.outcome == "duplicate"
    assert again.facts == []


def test_two_devices_measuring_at_the_same_time_both_count():
    first = evaluate(glucose(120, "mg/dL", "g-a", "meter-7"), GLUCOSE_PLAN)
    other = evaluate(glucose(121, "mg/dL", "g-b", "meter-8"), GLUCOSE_PLAN, first.state)
    assert other.outcome == "in_range"
    assert other.state.latest[GLUCOSE].value == 121


def test_a_device_reading_over_grpc_is_normalised_and_placed():
    checked, territory = reading_from_device(glucose(6.0, "mmol/L"), "52")
    assert (round(checked.value, 1), checked.unit) == (108.1, "mg/dL")
    assert territory == Territory.TERRITORY_HAUTE_MARNE


@pytest.mark.parametrize(
    ("change", "territory", "reason"),
    [
        ({"reading_id": ""}, "55", "lacks reading_id"),
        ({"patient_pseudonym": "184127512345678"}, "55", "pseudonym"),
        ({}, "75", "52, 54 or 55"),
        ({"value": 140.0, "loinc_code": "59408-5", "unit": "%"}, "55", "impossible"),
    ],
)
def test_a_bad_device_reading_is_refused_with_the_reason(change, territory, reason):
    bad = glucose(100, "mg/dL")
    for name, value in change.items():
        setattr(bad, name, value)
    with pytest.raises(InvalidEventError, match=reason):
        reading_from_device(bad, territory)
