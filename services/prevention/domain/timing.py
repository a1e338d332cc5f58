"""When a message may go out: quiet hours in French local time, and the frequency cap."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Every programme territory is in metropolitan France.
LOCAL = ZoneInfo("Europe/Paris")
MINUTES_A_DAY = 24 * 60
# Programme steps go out mid-morning, local time, on their day.
SEND_HOUR = 10


@dataclass(frozen=True)
class QuietHours:
    """A daily period, in local minutes after midnight, when nothing is sent; it may cross
    midnight (21:00 to 08:00). Start equal to end means none."""

    start_minute: int = 0
    end_minute: int = 0

    def __post_init__(self) -> None:
        for value in (self.start_minute, self.end_minute):
            if not 0 <= value < MINUTES_A_DAY:
                raise ValueError("quiet hours are minutes after midnight, 0 to 1439")

    @property
    def none(self) -> bool:
        return self.start_minute == self.end_minute

    def covers(self, moment: datetime) -> bool:
        if self.none:
            return False
        local = moment.astimezone(LOCAL)
        minute = local.hour * 60 + local.minute
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute < self.end_minute
        return minute >= self.start_minute or minute < self.end_minute

    def end_after(self, moment: datetime) -> datetime:
        """The first end of the quiet period after `moment` (which it covers)."""
        local = moment.astimezone(LOCAL)
        end = time(self.end_minute // 60, self.end_minute % 60)
        candidate = datetime.combine(local.date(), end, tzinfo=LOCAL)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=LOCAL)
        return candidate.astimezone(UTC)


def after_quiet_hours(moment: datetime, periods: Iterable[QuietHours]) -> datetime:
    """The earliest time from `moment` that no quiet period covers."""
    periods = [p for p in periods if not p.none]
    for _ in range(2 * len(periods) + 1):
        covering = [p for p in periods if p.covers(moment)]
        if not covering:
            return moment
        moment = max(p.end_after(moment) for p in covering)
    return moment


def cap_allows_at(
    sent: Sequence[datetime], now: datetime, max_messages: int, per: timedelta
) -> datetime | None:
    """None when one more message fits the cap now, else when it will (the oldest of the
    last `max_messages` leaves the sliding period). No cap when max_messages is 0."""
    if max_messages <= 0 or per <= timedelta(0):
        return None
    recent = sorted(t for t in sent if now - per < t <= now)
    if len(recent) < max_messages:
        return None
    return recent[len(recent) - max_messages] + per


def local_morning(day: date) -> datetime:
    """The day's send time (10:00 local), in UTC."""
    return datetime.combine(day, time(SEND_HOUR), tzinfo=LOCAL).astimezone(UTC)
