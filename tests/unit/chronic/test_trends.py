"""Trend rules: heart-failure weight gain and runs of values outside the target range,
judged by measurement time, not arrival."""

from datetime import timedelta

from emeuse.chronic.v1.chronic_events_pb2 import AlertSeverity
from emeuse.registry import ALERT_RAISED
from services.chronic.domain.monitoring import Result
from services.chronic.domain.trends import out_of_target_run, weight_gain
from tests.unit.chronic.plans import (
    GLUCOSE,
    NOW,
    WEIGHT,
    diabetes_plan,
    heart_failure_plan,
    in_force,
)
from tests.unit.chronic.readings import evaluate, feed, only, published, reading

HEART_FAILURE = in_force(heart_failure_plan())
# Target 80-180 mg/dL, inside the 70-250 alerting band.
DIABETES = in_force(diabetes_plan(target=(80, 180)))


def weights(*days_and_kg, first_id=1):
    """Weights measured `days` before NOW, in the order given (the order they arrive)."""
    return [
        reading(WEIGHT, kg, f"w-{i}", NOW - timedelta(days=days))
        for i, (days, kg) in enumerate(days_and_kg, start=first_id)
    ]


def raised(readings, plan):
    _, outcomes = feed(readings, plan)
    return published(outcomes, ALERT_RAISED)


def test_heart_failure_weight_gain_of_2_3_kg_within_3_days_alerts():
    alerts = raised(weights((2, 72.0), (1, 73.1), (0, 74.3)), HEART_FAILURE)
    [alert] = alerts
    assert alert.rule == "trend.weight_gain"
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_WARNING
    assert alert.reason == "29463-7 +2.3 kg within 3 days (from 72 kg)"
    assert list(alert.reading_ids) == ["w-3"]
    assert [r.value for r in alert.recent_results] == [74.3, 73.1, 72.0]


def test_a_gain_of_1_5_kg_within_3_days_does_not_alert():
    assert raised(weights((2, 72.0), (1, 72.8), (0, 73.5)), HEART_FAILURE) == []


def test_a_gain_of_2_3_kg_spread_over_5_days_does_not_alert():
    slow = weights((5, 72.0), (4, 72.5), (3, 73.0), (2, 73.5), (1, 73.9), (0, 74.3))
    assert raised(slow, HEART_FAILURE) == []
    assert raised(weights((5, 72.0), (0, 74.3)), HEART_FAILURE) == []


def test_a_late_lighter_weight_measured_before_heavier_ones_still_shows_the_gain():
    on_time = weights((1, 74.0), (0, 74.5))
    late = weights((2, 72.0), first_id=3)
    [alert] = raised([*on_time, *late], HEART_FAILURE)
    assert alert.rule == "trend.weight_gain"
    assert list(alert.reading_ids) == ["w-3"]
    assert alert.reason.startswith("29463-7 +2.5 kg within 3 days")


def test_a_late_lighter_weight_is_named_as_the_starting_weight():
    on_time = weights((1, 74.0), (0, 74.5))
    late = weights((2, 72.0), first_id=3)
    [alert] = raised([*on_time, *late], HEART_FAILURE)
    assert alert.reason == "29463-7 +2.5 kg within 3 days (from 72 kg)"


def test_weight_gain_is_a_heart_failure_rule_not_a_diabetes_one():
    plan = in_force(diabetes_plan(weight=True))
    assert raised(weights((2, 72.0), (1, 73.1), (0, 74.3)), plan) == []


def glucose(value, hours_ago, reading_id):
    return reading(GLUCOSE, value, reading_id, NOW - timedelta(hours=hours_ago))


def test_three_consecutive_values_above_target_alert():
    run = [glucose(200, 12, "g-1"), glucose(210, 6, "g-2"), glucose(220, 0, "g-3")]
    [alert] = raised(run, DIABETES)
    assert alert.rule == "trend.consecutive_out_of_target"
    assert alert.severity == AlertSeverity.ALERT_SEVERITY_WARNING
    assert alert.reason == "2339-0 3 consecutive values outside target 80-180 mg/dL"
    assert (alert.target_low, alert.target_high) == (80, 180)
    assert list(alert.reading_ids) == ["g-3"]


def test_two_values_out_of_target_do_not_alert():
    assert raised([glucose(200, 6, "g-1"), glucose(210, 0, "g-2")], DIABETES) == []


def test_a_value_in_target_between_breaks_the_run():
    broken = [glucose(200, 18, "g-1"), glucose(150, 12, "g-2")]
    broken += [glucose(210, 6, "g-3"), glucose(220, 0, "g-4")]
    assert raised(broken, DIABETES) == []


def test_the_run_is_by_measurement_time_an_in_target_value_that_arrived_first_breaks_it():
    # Arrival: 150 (measured second), then 200, 210, 220: three out-of-target arrivals in
    # a row, but measured 200, 150, 210, 220.
    arrivals = [glucose(150, 12, "g-2"), glucose(200, 18, "g-1")]
    arrivals += [glucose(210, 6, "g-3"), glucose(220, 0, "g-4")]
    assert raised(arrivals, DIABETES) == []


def test_a_late_out_of_target_value_completing_the_run_alerts():
    arrivals = [glucose(200, 12, "g-1"), glucose(220, 0, "g-3"), glucose(210, 6, "g-2")]
    [alert] = raised(arrivals, DIABETES)
    assert alert.rule == "trend.consecutive_out_of_target"
    assert list(alert.reading_ids) == ["g-2"]


def result(value, hours_ago, reading_id):
    return Result(
        reading_id=reading_id,
        value=value,
        unit="mg/dL",
        measured_at=NOW - timedelta(hours=hours_ago),
    )


def test_the_run_counts_neighbours_on_both_sides_of_a_late_value():
    history = [result(200, 3, "a"), result(60, 2, "b"), result(190, 1, "c"), result(120, 0, "d")]
    assert out_of_target_run(history, history[1], 80, 180) == 3
    assert out_of_target_run(history, history[3], 80, 180) == 0


def test_weight_gain_ignores_the_reading_itself_and_losses():
    new = Result(reading_id="w", value=70.0, unit="kg", measured_at=NOW)
    heavier_before = Result(
        reading_id="v", value=73.0, unit="kg", measured_at=NOW - timedelta(days=1)
    )
    assert weight_gain([new], new) is None
    assert weight_gain([heavier_before, new], new) is None


def test_a_late_out_of_range_value_older_than_the_kept_history_still_alerts():
    every_6_hours = [glucose(120, 6 * (40 - i), f"g-{i}") for i in range(40)]
    state, _ = feed(every_6_hours, DIABETES)
    # A meter synced a month-old hypoglycaemia (60 mg/dL, below 70).
    outcome = evaluate(reading(GLUCOSE, 60, "g-old", NOW - timedelta(days=30)), DIABETES, state)
    assert only(outcome, ALERT_RAISED).rule == "threshold.low"
