"""The measures remote monitoring knows: LOINC code, canonical UCUM unit, the range outside
which a value is impossible (a device or typing error, not a patient), and which codes
measure the same thing.

Values are normalised to the canonical unit before any rule sees them, so a care plan's
thresholds are always in that unit. Any UCUM unit of the same kind converts (domain.ucum):
glucose in g/L or mmol/L, weight in g or [lb_av], pressure in kPa.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.chronic.domain.ucum import UnitError, factor

# Glucose (C6H12O6): turns the mmol/L of a lab into the mg/dL of the care plans.
GLUCOSE_G_PER_MOL = 180.156


@dataclass(frozen=True)
class Measure:
    loinc: str
    name: str
    unit: str
    lowest: float
    highest: float
    # For a concentration reported as an amount of substance (mmol/L).
    molar_mass_g_per_mol: float | None = None


MEASURES = {
    m.loinc: m
    for m in (
        Measure("34714-6", "INR (point of care)", "{INR}", 0.5, 15.0),
        Measure("6301-6", "INR (lab)", "{INR}", 0.5, 15.0),
        Measure("2339-0", "capillary glucose", "mg/dL", 10.0, 1000.0, GLUCOSE_G_PER_MOL),
        Measure("59408-5", "SpO2", "%", 50.0, 100.0),
        Measure("29463-7", "body weight", "kg", 1.0, 400.0),
        Measure("8867-4", "heart rate", "/min", 20.0, 300.0),
        Measure("8480-6", "systolic blood pressure", "mm[Hg]", 40.0, 300.0),
    )
}

# LOINC codes that measure the same thing in different ways: a care plan that monitors one
# of them monitors them all, so a reading is judged whichever code its device sends.
# INR: 34714-6 is the capillary (point-of-care) INR, 6301-6 the lab's (venous plasma).
SAME_MEASURE: tuple[frozenset[str], ...] = (frozenset({"34714-6", "6301-6"}),)


def equivalent_codes(loinc: str) -> frozenset[str]:
    """The codes that measure what `loinc` measures, itself included."""
    return next((codes for codes in SAME_MEASURE if loinc in codes), frozenset({loinc}))


class ReadingError(ValueError):
    """A reading that cannot be a real measurement; the message says why, `kind` names the
    fault in a word (the gateway counts the readings it withholds from feeds by it)."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def to_canonical(loinc: str, unit: str) -> tuple[Measure, float]:
    """The measure and the factor that turns `unit` (UCUM) into its canonical unit."""
    measure = MEASURES.get(loinc)
    if measure is None:
        raise ReadingError(f"LOINC code {loinc!r} is not a monitored measure", kind="measure")
    if not unit:
        raise ReadingError(f"{measure.name} ({loinc}) has no unit", kind="unit")
    if unit == measure.unit:
        return measure, 1.0
    try:
        return measure, factor(unit, measure.unit, measure.molar_mass_g_per_mol)
    except UnitError as exc:
        raise ReadingError(
            f"{exc} for {measure.name} ({loinc}); use a UCUM unit of the kind of {measure.unit}",
            kind="unit",
        ) from None


def normalise(loinc: str, value: float, unit: str) -> tuple[float, str]:
    """The value in the measure's canonical unit; raises ReadingError for bad input."""
    measure, factor = to_canonical(loinc, unit)
    if not math.isfinite(value):
        raise ReadingError(f"{measure.name} value {value} is not a number", kind="value")
    canonical = value * factor
    if not measure.lowest <= canonical <= measure.highest:
        raise ReadingError(
            f"{measure.name} {value:g} {unit} is impossible "
            f"(outside {measure.lowest:g}-{measure.highest:g} {measure.unit})",
            kind="range",
        )
    return canonical, measure.unit
