"""What a sensor report must hold in any home, whatever the home holds: the checks home's
handler makes first, and the gateway before a report reaches partners' feeds."""

from __future__ import annotations

from emeuse.home.v1.home_events_pb2 import DoorState, SensorEventReported, SensorKind
from emeuse.runtime.codec import InvalidEventError
from services.home.domain.detection import Sensor, check_confidence, check_reading

SENSOR = {
    SensorKind.SENSOR_KIND_FALL: Sensor.FALL,
    SensorKind.SENSOR_KIND_MOTION: Sensor.MOTION,
    SensorKind.SENSOR_KIND_DOOR: Sensor.DOOR,
    SensorKind.SENSOR_KIND_BED_EXIT: Sensor.BED_EXIT,
    SensorKind.SENSOR_KIND_PANIC_BUTTON: Sensor.PANIC_BUTTON,
    SensorKind.SENSOR_KIND_HEARTBEAT: Sensor.HEARTBEAT,
    SensorKind.SENSOR_KIND_ROOM_TEMPERATURE: Sensor.ROOM_TEMPERATURE,
    SensorKind.SENSOR_KIND_BATTERY: Sensor.BATTERY,
}


def sensor_of(kind: SensorKind.ValueType) -> Sensor:
    # Proto3 enums are open: a kind added by a newer device maker only updates state here.
    return SENSOR.get(kind, Sensor.UNSPECIFIED)


class ReportError(InvalidEventError):
    """A sensor report no working device sends, whatever the home holds; `kind` names the
    fault in a word (the gateway counts the reports it withholds from feeds by it)."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_report(event: SensorEventReported) -> None:
    """What a sensor report must hold in any home: a door event says opened or closed, and
    its values are ones a working device reports. ReportError says what is wrong. Needs no
    state: the gateway applies it too, before an event reaches partners' feeds."""
    sensor = sensor_of(event.kind)
    if sensor is Sensor.DOOR and event.door_state not in (
        DoorState.DOOR_STATE_OPENED,
        DoorState.DOOR_STATE_CLOSED,
    ):
        # An opening taken for a closing (or the reverse) would hide a night outside.
        raise ReportError("a door event needs its door_state (opened or closed)", kind="door-state")
    try:
        check_reading(sensor, event.temperature_celsius, event.battery_percent)
        check_confidence(event.confidence)
    except ValueError as exc:
        raise ReportError(str(exc), kind="device-value") from None
