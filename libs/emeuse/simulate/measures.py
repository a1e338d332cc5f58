"""What each monitoring programme measures, its thresholds and its real cadence.

Thresholds are in the chronic service's canonical units (docs/chronic.md). A reading is
drawn inside the normal range, outside it (a warning), or beyond a critical threshold.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DAY_S = 86_400


@dataclass(frozen=True)
class Measure:
    loinc: str
    unit: str
    critical_low: float
    low: float
    high: float
    critical_high: float
    cadence_s: int  # expected interval between readings, as prescribed
    point_of_care: bool = False

    def value(self, rng: random.Random, abnormal: str) -> float:
        """A reading: "" normal, "warning" outside low..high, "critical" beyond a critical."""
        if abnormal == "critical":
            # A measure whose ceiling is its normal top (SpO2: 100 %) is critical only
            # below: a value above it is impossible, which chronic dead-letters.
            ceiling = self.critical_high <= self.high
            if self.critical_low > 0 and (ceiling or rng.random() < 0.5):
                return round(self.critical_low * rng.uniform(0.85, 0.97), 1)
            return round(self.critical_high * rng.uniform(1.03, 1.15), 1)
        if abnormal == "warning" and self.high < self.critical_high:
            return round(rng.uniform(self.high, self.critical_high), 1)
        if abnormal == "warning":
            return round(rng.uniform(self.critical_low, self.low), 1)
        return round(rng.uniform(self.low, self.high), 1)


PROGRAMME_MEASURES: dict[str, tuple[Measure, ...]] = {
    "diabetes": (Measure("2339-0", "mg/dL", 54, 70, 180, 300, DAY_S),),
    "heart_failure": (
        Measure("8867-4", "/min", 40, 50, 100, 130, DAY_S),
        Measure("8480-6", "mm[Hg]", 80, 90, 160, 200, DAY_S),
    ),
    "copd": (Measure("59408-5", "%", 85, 90, 100, 100, DAY_S),),
    "anticoagulated_ehpad": (Measure("34714-6", "{INR}", 1.5, 2, 3, 5, 7 * DAY_S, True),),
}

MONITORING_PROGRAMME = {
    "diabetes": "MONITORING_PROGRAMME_DIABETES",
    "heart_failure": "MONITORING_PROGRAMME_HEART_FAILURE",
    "copd": "MONITORING_PROGRAMME_RESPIRATORY",
    "anticoagulated_ehpad": "MONITORING_PROGRAMME_ANTICOAGULATION",
}
