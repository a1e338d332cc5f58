"""What GlucoFlow keeps: glucose readings and alerts per patient, each counted once.

The feed is at-least-once: a record may come twice (after a crash or a rebalance), so
counts go by the event's own id (reading id, alert id), not by arrival.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

GLUCOSE = "2339-0"  # LOINC: capillary blood glucose


@dataclass
class PatientCounts:
    readings: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    alerts: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add_reading(self, patient: str, reading_id: str) -> bool:
        """Count a glucose reading; False when it was counted already."""
        seen = self.readings[patient]
        if reading_id in seen:
            return False
        seen.add(reading_id)
        return True

    def add_alert(self, patient: str, alert_id: str) -> bool:
        """Count an alert; False when it was counted already."""
        seen = self.alerts[patient]
        if alert_id in seen:
            return False
        seen.add(alert_id)
        return True

    def readings_of(self, patient: str) -> int:
        return len(self.readings.get(patient, ()))

    def alerts_of(self, patient: str) -> int:
        return len(self.alerts.get(patient, ()))

    @property
    def patients(self) -> int:
        return len(self.readings.keys() | self.alerts.keys())
