"""Which sensor reports are activity, which raise an incident at once, and the kinds of
incident; the time-based detectors are in `detectors`."""

from __future__ import annotations

import math
from enum import Enum

# Below this a fall detector is more often wrong than right (a dropped object, a pet).
FALL_CONFIDENCE_THRESHOLD = 0.5
# A room thermometer reading outside this range is a broken device, not a cold home.
PLAUSIBLE_CELSIUS = (-30.0, 60.0)


class Sensor(Enum):
    UNSPECIFIED = "unspecified"
    FALL = "fall"
    MOTION = "motion"
    DOOR = "door"
    BED_EXIT = "bed_exit"
    PANIC_BUTTON = "panic_button"
    HEARTBEAT = "heartbeat"
    ROOM_TEMPERATURE = "room_temperature"
    BATTERY = "battery"


class Incident(Enum):
    FALL = "fall"
    PANIC = "panic"
    INACTIVITY = "inactivity"
    NIGHT_WANDERING = "night_wandering"
    TOO_COLD = "too_cold"
    TOO_HOT = "too_hot"
    DEVICE_OFFLINE = "device_offline"
    LOW_BATTERY = "low_battery"
    VISIT_MISSED = "visit_missed"


# Incidents that go to the emergency service when no contact answers.
EMERGENCIES = frozenset({Incident.FALL, Incident.PANIC})
# Incidents about the devices, for the provider, not the resident's contacts.
TECHNICAL = frozenset({Incident.DEVICE_OFFLINE, Incident.LOW_BATTERY})

# A heartbeat, a temperature or a battery level says the device is alive, not the
# resident: they must not hide inactivity.
ACTIVITY = frozenset(
    {Sensor.MOTION, Sensor.DOOR, Sensor.BED_EXIT, Sensor.FALL, Sensor.PANIC_BUTTON}
)


def check_confidence(confidence: float) -> None:
    """A device's confidence is a probability; anything else is a broken report."""
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence {confidence!r} is not between 0 and 1")


def check_reading(sensor: Sensor, celsius: float, battery_percent: float) -> None:
    """Values a working device can report; ValueError names the broken one."""
    low, high = PLAUSIBLE_CELSIUS
    if sensor is Sensor.ROOM_TEMPERATURE and not low <= celsius <= high:
        raise ValueError(f"temperature {celsius!r} °C is not a room temperature")
    if not (math.isfinite(battery_percent) and 0.0 <= battery_percent <= 100.0):
        raise ValueError(f"battery {battery_percent!r} % is not between 0 and 100")


def incident_for(sensor: Sensor, confidence: float) -> Incident | None:
    """The incident a sensor report raises at once, or None (other detectors may fire)."""
    check_confidence(confidence)
    if sensor is Sensor.FALL and confidence >= FALL_CONFIDENCE_THRESHOLD:
        return Incident.FALL
    if sensor is Sensor.PANIC_BUTTON:
        return Incident.PANIC
    return None


def is_activity(sensor: Sensor) -> bool:
    return sensor in ACTIVITY
