"""The resident's day: active hours (inactivity is abnormal) and quiet hours (a door is).

Times of day are local to the programme's homes (Europe/Paris, summer time included);
instants are UTC-aware datetimes.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

LOCAL = ZoneInfo("Europe/Paris")
CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
DEFAULT_WAKES_AT, DEFAULT_GOES_TO_BED_AT = time(7, 0), time(22, 0)
DEFAULT_INACTIVITY_ALERT_AFTER = timedelta(hours=3)


def parse_clock(text: str, default: time) -> time:
    """ "HH:MM" as a time of day; the default when empty; ValueError otherwise."""
    if not text:
        return default
    match = CLOCK.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time of day HH:MM")
    return time(int(match[1]), int(match[2]))


class Rhythm(BaseModel):
    wakes_at: time = DEFAULT_WAKES_AT
    goes_to_bed_at: time = DEFAULT_GOES_TO_BED_AT
    inactivity_alert_after_s: float = DEFAULT_INACTIVITY_ALERT_AFTER.total_seconds()

    @property
    def inactivity_alert_after(self) -> timedelta:
        return timedelta(seconds=self.inactivity_alert_after_s)

    def is_quiet(self, at: datetime) -> bool:
        """Whether `at` falls in the quiet hours, from bedtime to waking (across midnight)."""
        wake, bed = self.wakes_at, self.goes_to_bed_at
        if wake == bed:
            return False  # no quiet hours: active around the clock
        local = at.astimezone(LOCAL).time()
        if bed > wake:
            return local >= bed or local < wake
        return bed <= local < wake

    def active_since(self, at: datetime) -> datetime | None:
        """Start of the active period `at` is in (the last waking time); None in the quiet
        hours, and None with no quiet hours (then only activity bounds inactivity)."""
        if self.wakes_at == self.goes_to_bed_at or self.is_quiet(at):
            return None
        local = at.astimezone(LOCAL)
        woke = datetime.combine(local.date(), self.wakes_at, tzinfo=LOCAL)
        if woke > local:
            woke = datetime.combine(local.date() - timedelta(days=1), self.wakes_at, tzinfo=LOCAL)
        return woke
