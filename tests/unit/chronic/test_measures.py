import math

import pytest

from services.chronic.domain.measures import ReadingError, normalise


def test_weight_in_pounds_is_normalised_to_kilograms():
    value, unit = normalise("29463-7", 176.0, "[lb_av]")
    assert unit == "kg"
    assert value == pytest.approx(79.83, abs=0.01)


def test_glucose_in_mmol_per_litre_is_normalised_to_mg_per_decilitre():
    value, unit = normalise("2339-0", 5.5, "mmol/L")
    assert unit == "mg/dL"
    assert value == pytest.approx(99.1, abs=0.1)


@pytest.mark.parametrize(
    ("value", "unit", "mg_per_dl"),
    [(1.26, "g/L", 126.0), (7.0, "mmol/L", 126.1), (126.0, "mg/dL", 126.0), (1260, "mg/L", 126.0)],
)
def test_glucose_in_the_units_french_labs_report_is_normalised_to_mg_per_decilitre(
    value, unit, mg_per_dl
):
    normalised, canonical = normalise("2339-0", value, unit)
    assert canonical == "mg/dL"
    assert normalised == pytest.approx(mg_per_dl, abs=0.1)


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "expected"),
    [
        ("8480-6", 16.0, "kPa", (120.0, "mm[Hg]")),
        ("29463-7", 72_500, "g", (72.5, "kg")),
        ("8867-4", 1.2, "/s", (72.0, "/min")),
        ("34714-6", 2.4, "{ratio}", (2.4, "{INR}")),
        ("6301-6", 2.4, "1", (2.4, "{INR}")),
    ],
)
def test_any_ucum_unit_of_the_measures_kind_is_converted(loinc, value, unit, expected):
    normalised, canonical = normalise(loinc, value, unit)
    assert (pytest.approx(normalised, abs=0.05), canonical) == expected


def test_a_value_already_in_the_canonical_unit_is_kept():
    assert normalise("34714-6", 2.4, "{INR}") == (2.4, "{INR}")


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "reason"),
    [
        ("59408-5", 140, "%", "SpO2 140 % is impossible"),
        ("29463-7", -3, "kg", "body weight -3 kg is impossible"),
        ("34714-6", 2.5, "", "has no unit"),
        ("1234-5", 2.5, "mg", "not a monitored measure"),
        ("8867-4", 72, "mm[Hg]", "unit 'mm\\[Hg\\]' cannot be converted to '/min'"),
        ("29463-7", 176, "lb", "unit 'lb' is not a UCUM unit"),
        ("34714-6", 250, "%", "unit '%' is not '{INR}'"),
        ("2339-0", math.nan, "mg/dL", "not a number"),
    ],
)
def test_a_reading_that_cannot_be_a_measurement_is_refused_with_the_reason(
    loinc, value, unit, reason
):
    with pytest.raises(ReadingError, match=reason):
        normalise(loinc, value, unit)
