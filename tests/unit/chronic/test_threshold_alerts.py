"""Threshold alerts as the care team receives them (AlertRaised on the bus)."""

from datetime import timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertSeverity, CareRole
from emeuse.registry import ALERT_RAISED
from tests.unit.chronic.plans import (
    GLUCOSE,
    GP,
    INR,
    NOW,
    PATIENT,
    anticoagulation_plan,
    diabetes_plan,
    in_force,
)
from tests.unit.chronic.readings import evaluate, feed, only, reading, specs

INR_PLAN = in_force(anticoagulation_plan())
GLUCOSE_PLAN = in_force(diabetes_plan())


def test_inr_5_6_for_a_2_to_3_target_alerts_the_gp_as_critical():
    history = [
        reading(INR, 2.4, "inr-1", NOW - timedelta(days=14)),
        reading(INR, 2.8, "inr-2", NOW - timedelta(days=7)),
    ]
    state, _ = feed(history, INR_PLAN)
    outcome = evaluate(reading(INR, 5.6, "inr-3", NOW - timedelta(minutes=20)), INR_PLAN, state)

    assert outcome.outcome == "critical"
    assert specs(outcome) == [ALERT_RAISED]
    alert = only(outcome, ALERT_RAISED)
    assert alert.patient_pseudonym == PATIENT
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert alert.rule == "threshold.critical_high"
    assert alert.reason == "34714-6 5.6 {INR} above critical 5"
    assert alert.loinc_code == INR
    assert list(alert.reading_ids) == ["inr-3"]
    assert (alert.notified.member_id, alert.notified.role, alert.notified.escalation_rank) == (
        GP,
        CareRole.CARE_ROLE_GP,
        1,
    )
    assert (alert.target_low, alert.target_high, alert.unit) == (2.0, 3.0, "{INR}")
    # Newest first, the triggering one included: the team sees the trend at a glance.
    assert [(r.reading_id, r.value) for r in alert.recent_results] == [
        ("inr-3", 5.6),
        ("inr-2", 2.8),
        ("inr-1", 2.4),
    ]
    assert alert.raised_at.ToDatetime().replace(tzinfo=NOW.tzinfo) == NOW
    assert alert.measurement_to_alert.ToTimedelta() == timedelta(minutes=20)


def test_inr_3_4_is_a_warning_to_review():
    outcome = evaluate(reading(INR, 3.4, "inr-1", NOW), INR_PLAN)
    alert = only(outcome, ALERT_RAISED)
    assert outcome.outcome == "warning"
    assert (alert.severity, alert.rule) == (AlertSeverity.ALERT_SEVERITY_WARNING, "threshold.high")


def test_inr_in_target_raises_nothing():
    outcome = evaluate(reading(INR, 2.5, "inr-1", NOW), INR_PLAN)
    assert outcome.outcome == "in_range"
    assert outcome.facts == []
    assert outcome.state.alerts == {}


def test_glucose_50_is_a_severe_hypoglycaemia():
    outcome = evaluate(reading(GLUCOSE, 50, "g-1", NOW), GLUCOSE_PLAN)
    alert = only(outcome, ALERT_RAISED)
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_CRITICAL
    assert alert.rule == "threshold.critical_low"
    assert alert.reason == "2339-0 50 mg/dL below critical 54"
    assert alert.notified.member_id == GP


@pytest.mark.parametrize(
    ("value", "severity", "rule"),
    [
        (65, AlertSeverity.ALERT_SEVERITY_WARNING, "threshold.low"),
        (280, AlertSeverity.ALERT_SEVERITY_WARNING, "threshold.high"),
        (450, AlertSeverity.ALERT_SEVERITY_CRITICAL, "threshold.critical_high"),
    ],
)
def test_glucose_out_of_range_alerts_with_its_grade(value, severity, rule):
    alert = only(evaluate(reading(GLUCOSE, value, "g-1", NOW), GLUCOSE_PLAN), ALERT_RAISED)
    assert (alert.severity, alert.rule) == (severity, rule)


def test_glucose_in_mmol_per_litre_is_judged_and_shown_in_mg_per_decilitre():
    # 2.8 mmol/L is 50.4 mg/dL: a severe hypoglycaemia.
    outcome = evaluate(reading(GLUCOSE, 2.8, "g-1", NOW, unit="mmol/L"), GLUCOSE_PLAN)
    alert = only(outcome, ALERT_RAISED)
    assert alert.rule == "threshold.critical_low"
    assert alert.unit == "mg/dL"
    [shown] = alert.recent_results
    assert (shown.unit, round(shown.value, 1)) == ("mg/dL", 50.4)


def test_a_plan_written_in_mmol_per_litre_alerts_on_readings_in_mg_per_decilitre():
    plan = in_force(diabetes_plan(unit="mmol/L"))
    assert only(evaluate(reading(GLUCOSE, 50, "g-1", NOW), plan), ALERT_RAISED).rule == (
        "threshold.critical_low"
    )
    assert evaluate(reading(GLUCOSE, 100, "g-2", NOW), plan).outcome == "in_range"


def test_a_late_critical_value_is_among_the_results_its_alert_shows():
    daily = [reading(INR, 2.5, f"inr-{i}", NOW - timedelta(days=5 - i)) for i in range(5)]
    state, _ = feed(daily, INR_PLAN)
    late = evaluate(reading(INR, 5.6, "inr-late", NOW - timedelta(days=10)), INR_PLAN, state)
    alert = only(late, ALERT_RAISED)
    assert "inr-late" in [r.reading_id for r in alert.recent_results]
