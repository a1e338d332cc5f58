"""A partner's event is held to the owning service's domain rules before it is admitted."""

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingCorrected, ReadingRecorded
from emeuse.registry import ALERT_RAISED, READING_CORRECTED, READING_RECORDED
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.pseudonym import random_pseudonym
from services.gateway.domain_rules import check_domain_rules

INR = "34714-6"


def reading(loinc: str, value: float, unit: str) -> ReadingRecorded:
    return ReadingRecorded(
        reading_id="r-1",
        patient_pseudonym=random_pseudonym(),
        loinc_code=loinc,
        value=value,
        unit=unit,
    )


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "named"),
    [
        (INR, 40, "{INR}", "INR (point of care) 40 {INR} is impossible"),
        (INR, 2.5, "mmol/L", "mmol/L"),
        ("2339-0", 104, "", "has no unit"),
        ("1234-5", 1, "kg", "not a monitored measure"),
    ],
)
def test_an_impossible_reading_is_refused_with_chronics_reason(loinc, value, unit, named):
    with pytest.raises(InvalidEventError, match="refused by chronic's rules") as refused:
        check_domain_rules(READING_RECORDED, reading(loinc, value, unit))
    assert named in str(refused.value)


def test_a_correction_is_held_to_the_same_rules():
    correction = ReadingCorrected(
        reading_id="r-1",
        patient_pseudonym=random_pseudonym(),
        loinc_code=INR,
        value=40,
        unit="{INR}",
    )
    with pytest.raises(InvalidEventError, match="impossible"):
        check_domain_rules(READING_CORRECTED, correction)


@pytest.mark.parametrize(
    ("loinc", "value", "unit"), [(INR, 2.5, "{INR}"), ("2339-0", 5.8, "mmol/L")]
)
def test_a_possible_reading_passes_in_any_unit_chronic_converts(loinc, value, unit):
    check_domain_rules(READING_RECORDED, reading(loinc, value, unit))


def test_a_type_without_stateless_rules_passes():
    check_domain_rules(ALERT_RAISED, AlertRaised(alert_id="a-1"))
