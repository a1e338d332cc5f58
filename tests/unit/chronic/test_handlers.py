from datetime import UTC, datetime, timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertSeverity,
    CarePlanUpdated,
    MeasureThreshold,
    ReadingRecorded,
)
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.pseudonym import random_pseudonym
from services.chronic.domain.monitoring import PatientState
from services.chronic.grpc_api import summary
from services.chronic.handlers import care_plan_from_event, evaluate_reading, reading_from_device

PATIENT = random_pseudonym()
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
INR_PLAN = care_plan_from_event(
    CarePlanUpdated(
        patient_pseudonym=PATIENT,
        care_plan_id="cp-1",
        thresholds=[
            MeasureThreshold(
                loinc_code="34714-6", unit="{INR}", low=2, high=3, critical_low=1.5, critical_high=5
            )
        ],
    )
)


def inr(value, reading_id="r-1", measured_at=NOW - timedelta(minutes=5)):
    reading = ReadingRecorded(
        reading_id=reading_id,
        patient_pseudonym=PATIENT,
        loinc_code="34714-6",
        value=value,
        unit="{INR}",
    )
    reading.measured_at.FromDatetime(measured_at)
    return reading


def test_a_critical_inr_raises_a_critical_alert_naming_its_reading():
    outcome = evaluate_reading(inr(5.6), plan=INR_PLAN, state=PatientState(), now=NOW)
    assert outcome.outcome == "critical"
    assert outcome.alert is not None
    assert outcome.alert.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert list(outcome.alert.reading_ids) == ["r-1"]
    assert outcome.alert.patient_pseudonym == PATIENT
    assert outcome.state.alerts_raised == 1
    assert outcome.state.last_alert_id == outcome.alert.alert_id


def test_the_same_reading_twice_is_counted_once():
    first = evaluate_reading(inr(5.6), plan=INR_PLAN, state=PatientState(), now=NOW)
    again = evaluate_reading(inr(5.6), plan=INR_PLAN, state=first.state, now=NOW)
    assert again.outcome == "duplicate"
    assert again.alert is None
    assert again.state == first.state


def test_a_redelivered_reading_gets_the_same_alert_id():
    one = evaluate_reading(inr(5.6), plan=INR_PLAN, state=PatientState(), now=NOW)
    other = evaluate_reading(
        inr(5.6), plan=INR_PLAN, state=PatientState(), now=NOW + timedelta(seconds=3)
    )
    assert one.alert is not None and other.alert is not None
    assert one.alert.alert_id == other.alert.alert_id


def test_a_late_reading_does_not_replace_a_newer_latest_value():
    newer = evaluate_reading(
        inr(2.5, "r-new", NOW - timedelta(hours=1)), plan=INR_PLAN, state=PatientState(), now=NOW
    )
    late = evaluate_reading(
        inr(2.1, "r-old", NOW - timedelta(days=1)), plan=INR_PLAN, state=newer.state, now=NOW
    )
    assert late.state.latest["34714-6"].value == 2.5


def test_a_measure_not_in_the_plan_is_recorded_but_not_evaluated():
    glucose = ReadingRecorded(
        reading_id="g-1", patient_pseudonym=PATIENT, loinc_code="2339-0", value=40, unit="mg/dL"
    )
    glucose.measured_at.FromDatetime(NOW)
    outcome = evaluate_reading(glucose, plan=INR_PLAN, state=PatientState(), now=NOW)
    assert outcome.outcome == "not_monitored"
    assert outcome.alert is None
    assert outcome.state.latest["2339-0"].value == 40


def test_a_reading_in_a_unit_its_measure_does_not_take_is_invalid():
    reading = inr(5.6)
    reading.unit = "%"
    with pytest.raises(InvalidEventError, match=r"unit '%' is not one of \{INR\}"):
        evaluate_reading(reading, plan=INR_PLAN, state=PatientState(), now=NOW)


def test_a_care_plan_with_crossed_bands_is_refused():
    plan = CarePlanUpdated(
        patient_pseudonym=PATIENT,
        care_plan_id="cp-2",
        thresholds=[
            MeasureThreshold(
                loinc_code="2339-0",
                unit="mg/dL",
                low=250,
                high=70,
                critical_low=54,
                critical_high=400,
            )
        ],
    )
    with pytest.raises(InvalidEventError, match="critical_low <= low <= high <= critical_high"):
        care_plan_from_event(plan)


def test_the_state_survives_its_table_form():
    outcome = evaluate_reading(inr(5.6), plan=INR_PLAN, state=PatientState(), now=NOW)
    assert PatientState.from_json(outcome.state.to_json()) == outcome.state


def test_the_summary_shows_latest_values_and_alerts_from_the_tables():
    outcome = evaluate_reading(inr(5.6), plan=INR_PLAN, state=PatientState(), now=NOW)
    response = summary(PATIENT, INR_PLAN, outcome.state.to_json())
    assert response.has_care_plan
    assert [(v.loinc_code, v.value) for v in response.latest_values] == [("34714-6", 5.6)]
    assert response.alerts_raised == 1


def test_the_summary_of_an_unknown_patient_is_empty():
    response = summary(PATIENT, None, None)
    assert not response.has_care_plan
    assert list(response.latest_values) == []


def test_a_reading_that_is_not_a_number_is_invalid():
    with pytest.raises(InvalidEventError, match="not a number"):
        evaluate_reading(inr(float("nan")), plan=INR_PLAN, state=PatientState(), now=NOW)


def glucose(value, unit, reading_id="g-1", device_id="", measured_at=NOW):
    reading = ReadingRecorded(
        reading_id=reading_id,
        patient_pseudonym=PATIENT,
        loinc_code="2339-0",
        value=value,
        unit=unit,
        device_id=device_id,
    )
    reading.measured_at.FromDatetime(measured_at)
    return reading


GLUCOSE_PLAN = care_plan_from_event(
    CarePlanUpdated(
        patient_pseudonym=PATIENT,
        care_plan_id="cp-2",
        thresholds=[
            MeasureThreshold(
                loinc_code="2339-0",
                unit="mg/dL",
                low=70,
                high=250,
                critical_low=54,
                critical_high=400,
            )
        ],
    )
)


def test_glucose_in_mmol_per_litre_is_checked_in_mg_per_decilitre():
    outcome = evaluate_reading(
        glucose(2.8, "mmol/L"), plan=GLUCOSE_PLAN, state=PatientState(), now=NOW
    )
    assert outcome.alert is not None
    assert outcome.alert.rule == "threshold.critical_low"
    latest = outcome.state.latest["2339-0"]
    assert latest.unit == "mg/dL"
    assert latest.value == pytest.approx(50.4, abs=0.1)


def test_a_plan_in_mmol_per_litre_is_kept_in_mg_per_decilitre():
    plan = care_plan_from_event(
        CarePlanUpdated(
            patient_pseudonym=PATIENT,
            care_plan_id="cp-3",
            thresholds=[
                MeasureThreshold(
                    loinc_code="2339-0",
                    unit="mmol/L",
                    low=3.9,
                    high=13.9,
                    critical_low=3.0,
                    critical_high=22.2,
                )
            ],
        )
    )
    assert plan["2339-0"]["unit"] == "mg/dL"
    assert plan["2339-0"]["low"] == pytest.approx(70.3, abs=0.1)


def test_the_same_measurement_from_one_device_under_two_ids_counts_once():
    first = evaluate_reading(
        glucose(50, "mg/dL", "g-a", "meter-7"), plan=GLUCOSE_PLAN, state=PatientState(), now=NOW
    )
    again = evaluate_reading(
        glucose(50, "mg/dL", "g-b", "meter-7"), plan=GLUCOSE_PLAN, state=first.state, now=NOW
    )
    assert first.alert is not None
    assert again.outcome == "duplicate"


def test_two_devices_measuring_at_the_same_time_both_count():
    first = evaluate_reading(
        glucose(120, "mg/dL", "g-a", "meter-7"), plan=GLUCOSE_PLAN, state=PatientState(), now=NOW
    )
    other = evaluate_reading(
        glucose(121, "mg/dL", "g-b", "meter-8"), plan=GLUCOSE_PLAN, state=first.state, now=NOW
    )
    assert other.outcome == "in_range"


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
    reading = glucose(100, "mg/dL")
    for name, value in change.items():
        setattr(reading, name, value)
    with pytest.raises(InvalidEventError, match=reason):
        reading_from_device(reading, territory)
