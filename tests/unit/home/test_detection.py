"""Home detection rules: which sensor reports raise incidents and which are activity."""

import pytest

from services.home.domain.detection import Incident, Sensor, incident_for, is_activity


def test_a_fall_with_confidence_0_9_raises_a_fall_incident() -> None:
    assert incident_for(Sensor.FALL, 0.9) is Incident.FALL


def test_a_fall_at_exactly_the_threshold_raises_a_fall_incident() -> None:
    assert incident_for(Sensor.FALL, 0.5) is Incident.FALL


def test_a_fall_with_confidence_0_2_raises_nothing() -> None:
    assert incident_for(Sensor.FALL, 0.2) is None


def test_a_panic_button_raises_a_panic_incident() -> None:
    assert incident_for(Sensor.PANIC_BUTTON, 0.0) is Incident.PANIC


@pytest.mark.parametrize(
    "sensor", [Sensor.MOTION, Sensor.DOOR, Sensor.BED_EXIT, Sensor.HEARTBEAT, Sensor.UNSPECIFIED]
)
def test_other_sensor_kinds_raise_nothing(sensor: Sensor) -> None:
    assert incident_for(sensor, 1.0) is None


@pytest.mark.parametrize("confidence", [-0.1, 1.5, float("nan")])
def test_a_confidence_outside_zero_to_one_is_refused(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        incident_for(Sensor.FALL, confidence)


@pytest.mark.parametrize(
    "sensor", [Sensor.MOTION, Sensor.DOOR, Sensor.BED_EXIT, Sensor.FALL, Sensor.PANIC_BUTTON]
)
def test_movement_doors_bed_exits_falls_and_panics_are_activity(sensor: Sensor) -> None:
    assert is_activity(sensor)


def test_a_heartbeat_is_not_activity() -> None:
    assert not is_activity(Sensor.HEARTBEAT)
