"""A person's prevention schedule: enrolled or not, and the reminders planned."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# A week after enrolment leaves the person time to set preferences before the first reminder.
REMINDER_DELAY = timedelta(days=7)


def due_at(enrolled_at: datetime) -> datetime:
    return enrolled_at + REMINDER_DELAY


@dataclass(frozen=True)
class Reminder:
    reminder_id: str
    programme: str
    channel: str
    due_at: datetime

    def to_json(self) -> dict[str, str]:
        return {
            "reminder_id": self.reminder_id,
            "programme": self.programme,
            "channel": self.channel,
            "due_at": self.due_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Reminder:
        return cls(
            reminder_id=data["reminder_id"],
            programme=data["programme"],
            channel=data["channel"],
            due_at=datetime.fromisoformat(data["due_at"]),
        )


@dataclass(frozen=True)
class PersonSchedule:
    enrolled: bool = False
    reminders: tuple[Reminder, ...] = ()

    def has_reminder(self, reminder_id: str) -> bool:
        return any(r.reminder_id == reminder_id for r in self.reminders)

    def with_enrolment(self) -> PersonSchedule:
        return replace(self, enrolled=True)

    def with_reminder(self, reminder: Reminder) -> PersonSchedule:
        return replace(self, reminders=(*self.reminders, reminder))

    def by_due_date(self) -> tuple[Reminder, ...]:
        return tuple(sorted(self.reminders, key=lambda r: (r.due_at, r.programme)))

    def to_json(self) -> dict[str, object]:
        return {"enrolled": self.enrolled, "reminders": [r.to_json() for r in self.reminders]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PersonSchedule:
        reminders = data.get("reminders") or []
        assert isinstance(reminders, list)
        return cls(
            enrolled=bool(data.get("enrolled", False)),
            reminders=tuple(Reminder.from_json(r) for r in reminders),
        )
