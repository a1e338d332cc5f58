"""Which sensor reports need someone to answer, and which show the resident is active."""

from __future__ import annotations

from enum import Enum

# Below this a fall detector is more often wrong than right (a dropped object, a pet).
FALL_CONFIDENCE_THRESHOLD = 0.5


class Sensor(Enum):
    UNSPECIFIED = "unspecified"
    FALL = "fall"
    MOTION = "motion"
    DOOR = "door"
    BED_EXIT = "bed_exit"
    PANIC_BUTTON = "panic_button"
    HEARTBEAT = "heartbeat"


class Incident(Enum):
    FALL = "fall"
    PANIC = "panic"


# A heartbeat says the device is alive, not the resident: it must not hide inactivity.
ACTIVITY = frozenset(
    {Sensor.MOTION, Sensor.DOOR, Sensor.BED_EXIT, Sensor.FALL, Sensor.PANIC_BUTTON}
)


def check_confidence(confidence: float) -> None:
    """A device's confidence is a probability; anything else is a broken report."""
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence {confidence!r} is not between 0 and 1")


def incident_for(sensor: Sensor, confidence: float) -> Incident | None:
    """The incident a sensor report raises, or None when it only updates the home's state."""
    check_confidence(confidence)
    if sensor is Sensor.FALL and confidence >= FALL_CONFIDENCE_THRESHOLD:
        return Incident.FALL
    if sensor is Sensor.PANIC_BUTTON:
        return Incident.PANIC
    return None


def is_activity(sensor: Sensor) -> bool:
    return sensor in ACTIVITY
