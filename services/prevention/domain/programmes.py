"""French national prevention programmes and the ages they invite."""

from __future__ import annotations

from dataclasses import dataclass

OLDEST_AGE = 120


@dataclass(frozen=True)
class Programme:
    """A national programme and the ages, inclusive, it invites."""

    name: str
    age_from: int
    age_to: int

    def overlaps(self, band_from: int, band_to: int) -> bool:
        return band_from <= self.age_to and self.age_from <= band_to


PROGRAMMES = (
    Programme("vaccination.hpv", 11, 14),
    Programme("screening.colorectal", 50, 74),
    # Sex is not on the bus yet, so breast screening is offered to the whole age band
    # and the person's own preferences decide whether the reminder is acted on.
    Programme("screening.breast", 50, 74),
)


def check_age_band(band_from: int, band_to: int) -> None:
    if not 0 <= band_from <= band_to <= OLDEST_AGE:
        raise ValueError(
            f"age band {band_from}-{band_to} must satisfy 0 <= from <= to <= {OLDEST_AGE}"
        )


def programmes_for(band_from: int, band_to: int) -> tuple[Programme, ...]:
    """Programmes a person in the age band is invited to: those whose ages overlap it."""
    check_age_band(band_from, band_to)
    return tuple(p for p in PROGRAMMES if p.overlaps(band_from, band_to))
