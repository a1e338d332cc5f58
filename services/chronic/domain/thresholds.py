"""Care-plan thresholds: which band a value falls in."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(Enum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Threshold:
    """Alerting band a prescriber set for one measure of one patient."""

    unit: str
    low: float
    high: float
    critical_low: float
    critical_high: float


@dataclass(frozen=True)
class Breach:
    severity: Severity
    rule: str
    reason: str


def check_value(loinc: str, value: float, unit: str, threshold: Threshold) -> Breach | None:
    """The breach a value makes of its band, the critical one first; None when in range."""
    if unit != threshold.unit:
        raise ValueError(f"reading unit {unit!r} differs from care-plan unit {threshold.unit!r}")
    if value > threshold.critical_high:
        return Breach(
            Severity.CRITICAL,
            "threshold.critical_high",
            f"{loinc} {value:g} {unit} above critical {threshold.critical_high:g}",
        )
    if value < threshold.critical_low:
        return Breach(
            Severity.CRITICAL,
            "threshold.critical_low",
            f"{loinc} {value:g} {unit} below critical {threshold.critical_low:g}",
        )
    if value > threshold.high:
        return Breach(
            Severity.WARNING, "threshold.high", f"{loinc} {value:g} {unit} above {threshold.high:g}"
        )
    if value < threshold.low:
        return Breach(
            Severity.WARNING, "threshold.low", f"{loinc} {value:g} {unit} below {threshold.low:g}"
        )
    return None
