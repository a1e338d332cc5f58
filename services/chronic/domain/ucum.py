"""UCUM units (the Unified Code for Units of Measure, what HL7 FHIR and labs use), parsed
and converted by ucumvert (a UCUM grammar over pint) rather than a hand table per unit.

Factors are cached per pair of units: a reading's conversion is a dictionary look-up, and
the registry (about a second to build) is built at start-up (`load`), never at import.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pint.errors import DimensionalityError
from ucumvert import InvalidUcumError, PintUcumRegistry

# A unit made of an annotation alone ("{INR}", "{ratio}") is the number 1 in UCUM.
ANNOTATION_ONLY = re.compile(r"\{[^{}]*\}")


class UnitError(ValueError):
    """A unit that is not UCUM, or that cannot be converted to the one wanted."""


@cache
def _registry() -> Any:
    return PintUcumRegistry()


def load() -> None:
    """Build the registry now (at start-up), not in the first reading's transaction."""
    _registry()


def _quantity(unit: str) -> Any:
    code = "1" if ANNOTATION_ONLY.fullmatch(unit) else unit
    try:
        return _registry().from_ucum(code)
    except InvalidUcumError:
        raise UnitError(f"unit {unit!r} is not a UCUM unit") from None


@cache
def factor(unit: str, to: str, molar_mass_g_per_mol: float | None = None) -> float:
    """What a value in `unit` is multiplied by to be in `to`. An amount of substance (mmol/L)
    becomes a mass (mg/dL) through the molar mass, when one is given."""
    source, target = _quantity(unit), _quantity(to)
    if source.dimensionless and target.dimensionless and _in(source, target) != 1:
        # A scaled pure number (%, 10*3) of a ratio measure is a mistake, not a unit.
        raise UnitError(f"unit {unit!r} is not {to!r}")
    try:
        return _in(source, target)
    except DimensionalityError:
        pass
    if molar_mass_g_per_mol is not None:
        try:
            return _in(source * _quantity("g/mol") * molar_mass_g_per_mol, target)
        except DimensionalityError:
            pass
    raise UnitError(f"unit {unit!r} cannot be converted to {to!r}")


def _in(source: Any, target: Any) -> float:
    """How many `target` one `source` makes."""
    return float(source.to(target.units).magnitude / target.magnitude)
