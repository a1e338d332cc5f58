"""French national screening and vaccination programmes, and the ages they invite.

HPV vaccination is offered at 11-14 (two doses six months apart); organised colorectal
and breast cancer screening every two years at 50-74. A person is known by an age band
given at enrolment; a programme invites a band only when it lies wholly inside its ages
(a 74-79 band may be 79: not invited), and the band ages with the time since enrolment,
so screening rounds stop before anyone can be past 74.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

OLDEST_AGE = 120


@dataclass(frozen=True)
class Programme:
    """A national programme: the ages, inclusive, it invites, and its reminder steps."""

    name: str
    age_from: int
    age_to: int
    template_id: str
    # Delay of each further step after the first (HPV's second dose).
    further_steps: tuple[timedelta, ...] = ()
    # Screening rounds come back: the next reminder this long after one is sent.
    every: timedelta | None = None

    def invites(self, band_from: int, band_to: int, years_later: int = 0) -> bool:
        """Whether everyone in the band, `years_later` years after it was given, is of
        the programme's ages."""
        return self.age_from <= band_from + years_later and band_to + years_later <= self.age_to


PROGRAMMES = (
    Programme(
        "vaccination.hpv",
        11,
        14,
        "reminder.vaccination.hpv",
        further_steps=(timedelta(days=182),),
    ),
    Programme(
        "screening.colorectal",
        50,
        74,
        "reminder.screening.colorectal",
        every=timedelta(days=730),
    ),
    # Sex is not on the bus yet, so breast screening is offered to the whole age band
    # and the person's own preferences decide whether the reminder is acted on.
    Programme(
        "screening.breast",
        50,
        74,
        "reminder.screening.breast",
        every=timedelta(days=730),
    ),
)
BY_NAME = {programme.name: programme for programme in PROGRAMMES}


def check_age_band(band_from: int, band_to: int) -> None:
    if not 0 <= band_from <= band_to <= OLDEST_AGE:
        raise ValueError(
            f"age band {band_from}-{band_to} must satisfy 0 <= from <= to <= {OLDEST_AGE}"
        )


def programmes_for(band_from: int, band_to: int) -> tuple[Programme, ...]:
    """Programmes a person in the age band is invited to: those whose ages contain it."""
    check_age_band(band_from, band_to)
    return tuple(p for p in PROGRAMMES if p.invites(band_from, band_to))
