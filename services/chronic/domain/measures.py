"""The measures remote monitoring knows: LOINC code, canonical UCUM unit, accepted units
and the range outside which a value is impossible (a device or typing error, not a patient).

Values are normalised to the canonical unit before any rule sees them, so a care plan's
thresholds are always in that unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MG_DL_PER_MMOL_L_GLUCOSE = 18.016
KG_PER_LB = 0.45359237


@dataclass(frozen=True)
class Measure:
    loinc: str
    name: str
    unit: str
    lowest: float
    highest: float
    # Accepted unit -> factor to the canonical unit.
    conversions: dict[str, float] = field(default_factory=dict)


MEASURES = {
    m.loinc: m
    for m in (
        Measure("34714-6", "INR (point of care)", "{INR}", 0.5, 15.0, {"{ratio}": 1.0, "1": 1.0}),
        Measure("6301-6", "INR (lab)", "{INR}", 0.5, 15.0, {"{ratio}": 1.0, "1": 1.0}),
        Measure(
            "2339-0",
            "capillary glucose",
            "mg/dL",
            10.0,
            1000.0,
            {"mmol/L": MG_DL_PER_MMOL_L_GLUCOSE},
        ),
        Measure("59408-5", "SpO2", "%", 50.0, 100.0),
        Measure(
            "29463-7",
            "body weight",
            "kg",
            1.0,
            400.0,
            {"[lb_av]": KG_PER_LB, "lb": KG_PER_LB, "g": 0.001},
        ),
        Measure("8867-4", "heart rate", "/min", 20.0, 300.0, {"{beats}/min": 1.0}),
        Measure("8480-6", "systolic blood pressure", "mm[Hg]", 40.0, 300.0),
    )
}


class ReadingError(ValueError):
    """A reading that cannot be a real measurement; the message says why."""


def to_canonical(loinc: str, unit: str) -> tuple[Measure, float]:
    """The measure and the factor that turns `unit` into its canonical unit."""
    measure = MEASURES.get(loinc)
    if measure is None:
        raise ReadingError(f"LOINC code {loinc!r} is not a monitored measure")
    if not unit:
        raise ReadingError(f"{measure.name} ({loinc}) has no unit")
    if unit == measure.unit:
        return measure, 1.0
    if unit in measure.conversions:
        return measure, measure.conversions[unit]
    known = ", ".join([measure.unit, *measure.conversions])
    raise ReadingError(f"unit {unit!r} is not one of {known} for {measure.name} ({loinc})")


def normalise(loinc: str, value: float, unit: str) -> tuple[float, str]:
    """The value in the measure's canonical unit; raises ReadingError for bad input."""
    measure, factor = to_canonical(loinc, unit)
    if not math.isfinite(value):
        raise ReadingError(f"{measure.name} value {value} is not a number")
    canonical = value * factor
    if not measure.lowest <= canonical <= measure.highest:
        raise ReadingError(
            f"{measure.name} {value:g} {unit} is impossible "
            f"(outside {measure.lowest:g}-{measure.highest:g} {measure.unit})"
        )
    return canonical, measure.unit
