"""A partner's event is held to the owning service's domain rules before it is admitted,
and a platform event before it goes to partners' feeds."""

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingCorrected, ReadingRecorded
from emeuse.home.v1.home_events_pb2 import DoorState, SensorEventReported, SensorKind
from emeuse.registry import ALERT_RAISED, READING_CORRECTED, READING_RECORDED, SENSOR_EVENT_REPORTED
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.pseudonym import random_pseudonym
from services.gateway.domain_rules import RuleBroken, check_domain_rules

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


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "rule"),
    [
        (INR, 40, "{INR}", "chronic:range"),
        (INR, 2.5, "mmol/L", "chronic:unit"),
        (INR, float("nan"), "{INR}", "chronic:value"),
        ("1234-5", 1, "kg", "chronic:measure"),
    ],
)
def test_each_refusal_names_its_rule_in_a_few_words(loinc, value, unit, rule):
    with pytest.raises(RuleBroken) as refused:
        check_domain_rules(READING_RECORDED, reading(loinc, value, unit))
    assert refused.value.rule == rule


def sensor_report(kind: SensorKind.ValueType, **fields) -> SensorEventReported:
    return SensorEventReported(
        sensor_event_id="s-1",
        resident_pseudonym=random_pseudonym(),
        device_id="door-01",
        kind=kind,
        **fields,
    )


@pytest.mark.parametrize(
    ("report", "rule", "named"),
    [
        (sensor_report(SensorKind.SENSOR_KIND_DOOR), "home:door-state", "door_state"),
        (
            sensor_report(SensorKind.SENSOR_KIND_ROOM_TEMPERATURE, temperature_celsius=300),
            "home:device-value",
            "not a room temperature",
        ),
        (
            sensor_report(SensorKind.SENSOR_KIND_FALL, confidence=3),
            "home:device-value",
            "confidence",
        ),
    ],
)
def test_a_sensor_report_no_working_device_sends_is_refused_with_homes_reason(report, rule, named):
    with pytest.raises(RuleBroken, match="refused by home's rules") as refused:
        check_domain_rules(SENSOR_EVENT_REPORTED, report)
    assert refused.value.rule == rule
    assert named in str(refused.value)


def test_a_door_event_saying_opened_or_closed_passes():
    for state in (DoorState.DOOR_STATE_OPENED, DoorState.DOOR_STATE_CLOSED):
        check_domain_rules(
            SENSOR_EVENT_REPORTED, sensor_report(SensorKind.SENSOR_KIND_DOOR, door_state=state)
        )


def test_a_prevention_action_said_done_in_the_future_is_refused_as_prevention_does():
    from datetime import UTC, datetime, timedelta

    from emeuse.prevention.v1.prevention_events_pb2 import (
        PreventionActionKind,
        PreventionActionRecorded,
    )
    from emeuse.registry import PREVENTION_ACTION_RECORDED
    from emeuse.runtime.envelope import timestamp

    def action(at: datetime) -> PreventionActionRecorded:
        return PreventionActionRecorded(
            action_id="kit-55-0001",
            person_pseudonym=random_pseudonym(),
            programme="screening.colorectal",
            kind=PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE,
            acted_at=timestamp(at),
        )

    now = datetime.now(UTC)
    check_domain_rules(PREVENTION_ACTION_RECORDED, action(now - timedelta(days=2)))
    with pytest.raises(RuleBroken, match="acted_at is in the future") as refused:
        check_domain_rules(PREVENTION_ACTION_RECORDED, action(now + timedelta(days=400)))
    assert refused.value.rule == "prevention:future"
