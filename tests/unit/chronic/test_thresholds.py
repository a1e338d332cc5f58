import pytest

from services.chronic.domain.thresholds import Severity, Threshold, check_value

INR_TARGET = Threshold(unit="{INR}", low=2.0, high=3.0, critical_low=1.5, critical_high=5.0)
GLUCOSE = Threshold(unit="mg/dL", low=70, high=250, critical_low=54, critical_high=400)


def test_inr_5_6_for_a_2_to_3_target_is_critical():
    breach = check_value("34714-6", 5.6, "{INR}", INR_TARGET)
    assert breach is not None
    assert breach.severity is Severity.CRITICAL
    assert breach.rule == "threshold.critical_high"
    assert breach.reason == "34714-6 5.6 {INR} above critical 5"


def test_inr_3_4_is_a_warning():
    breach = check_value("34714-6", 3.4, "{INR}", INR_TARGET)
    assert breach is not None and breach.severity is Severity.WARNING


def test_inr_in_target_raises_nothing():
    assert check_value("34714-6", 2.5, "{INR}", INR_TARGET) is None


def test_glucose_50_is_a_severe_hypoglycaemia():
    breach = check_value("2339-0", 50, "mg/dL", GLUCOSE)
    assert breach is not None
    assert (breach.severity, breach.rule) == (Severity.CRITICAL, "threshold.critical_low")


def test_glucose_65_is_a_hypoglycaemia_warning():
    breach = check_value("2339-0", 65, "mg/dL", GLUCOSE)
    assert breach is not None
    assert (breach.severity, breach.rule) == (Severity.WARNING, "threshold.low")


def test_a_value_in_another_unit_than_the_plan_is_refused():
    with pytest.raises(ValueError, match="mmol/L"):
        check_value("2339-0", 3.1, "mmol/L", GLUCOSE)
