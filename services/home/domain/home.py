"""A resident's home state: last activity, sensor events counted, incidents, events seen."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

RECENT_SENSOR_EVENTS_KEPT = 200
# Bounds the table value if a device misfires for weeks; far above any real home's count.
INCIDENTS_KEPT = 1000


@dataclass(frozen=True)
class HomeState:
    last_activity_at: datetime | None = None
    sensor_events: int = 0
    incident_ids: tuple[str, ...] = ()
    recent_sensor_event_ids: tuple[str, ...] = ()

    def has_seen(self, sensor_event_id: str) -> bool:
        return sensor_event_id in self.recent_sensor_event_ids

    def with_sensor_event(self, sensor_event_id: str, *, activity_at: datetime | None) -> HomeState:
        """Count the event; last activity moves only forward, so a late event leaves it."""
        last = self.last_activity_at
        if activity_at is not None and (last is None or activity_at > last):
            last = activity_at
        seen = (*self.recent_sensor_event_ids, sensor_event_id)[-RECENT_SENSOR_EVENTS_KEPT:]
        return replace(
            self,
            last_activity_at=last,
            sensor_events=self.sensor_events + 1,
            recent_sensor_event_ids=seen,
        )

    def with_incident(self, incident_id: str) -> HomeState:
        return replace(self, incident_ids=(*self.incident_ids, incident_id)[-INCIDENTS_KEPT:])

    def to_json(self) -> dict[str, object]:
        return {
            "last_activity_at": self.last_activity_at.isoformat()
            if self.last_activity_at
            else None,
            "sensor_events": self.sensor_events,
            "incident_ids": list(self.incident_ids),
            "recent_sensor_event_ids": list(self.recent_sensor_event_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HomeState:
        last = data.get("last_activity_at")
        return cls(
            last_activity_at=datetime.fromisoformat(last) if isinstance(last, str) else None,
            sensor_events=int(data.get("sensor_events", 0)),  # type: ignore[call-overload]
            incident_ids=tuple(data.get("incident_ids", ())),  # type: ignore[arg-type]
            recent_sensor_event_ids=tuple(data.get("recent_sensor_event_ids", ())),  # type: ignore[arg-type]
        )
