"""A patient's monitoring state: latest value per measure, alerts, readings already seen."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

RECENT_READINGS_KEPT = 200


@dataclass(frozen=True)
class Latest:
    value: float
    unit: str
    measured_at: datetime


@dataclass(frozen=True)
class PatientState:
    latest: dict[str, Latest] = field(default_factory=dict)
    alerts_raised: int = 0
    last_alert_id: str = ""
    recent_reading_ids: tuple[str, ...] = ()

    def has_seen(self, reading_id: str) -> bool:
        return reading_id in self.recent_reading_ids

    def with_reading(self, reading_id: str, loinc: str, latest: Latest) -> PatientState:
        """Remember the reading; the latest value moves only for a later measurement time."""
        values = dict(self.latest)
        current = values.get(loinc)
        if current is None or latest.measured_at >= current.measured_at:
            values[loinc] = latest
        seen = (*self.recent_reading_ids, reading_id)[-RECENT_READINGS_KEPT:]
        return replace(self, latest=values, recent_reading_ids=seen)

    def with_seen(self, measurement: str) -> PatientState:
        """Remember a measurement key (device, measure, time) as seen."""
        seen = (*self.recent_reading_ids, measurement)[-RECENT_READINGS_KEPT:]
        return replace(self, recent_reading_ids=seen)

    def with_alert(self, alert_id: str) -> PatientState:
        return replace(self, alerts_raised=self.alerts_raised + 1, last_alert_id=alert_id)

    def to_json(self) -> dict[str, object]:
        return {
            "latest": {
                loinc: {"value": v.value, "unit": v.unit, "measured_at": v.measured_at.isoformat()}
                for loinc, v in self.latest.items()
            },
            "alerts_raised": self.alerts_raised,
            "last_alert_id": self.last_alert_id,
            "recent_reading_ids": list(self.recent_reading_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PatientState:
        latest = data.get("latest") or {}
        assert isinstance(latest, dict)
        return cls(
            latest={
                loinc: Latest(v["value"], v["unit"], datetime.fromisoformat(v["measured_at"]))
                for loinc, v in latest.items()
            },
            alerts_raised=int(data.get("alerts_raised", 0)),  # type: ignore[call-overload]
            last_alert_id=str(data.get("last_alert_id", "")),
            recent_reading_ids=tuple(data.get("recent_reading_ids", ())),  # type: ignore[arg-type]
        )
