"""Prevention use cases: plain functions, protobuf in and out, state passed in and returned."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from emeuse.prevention.v1.prevention_events_pb2 import PersonEnrolled, ReminderScheduled
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import timestamp
from services.prevention.domain.channels import choose_channel
from services.prevention.domain.programmes import programmes_for
from services.prevention.domain.schedule import PersonSchedule, Reminder, due_at

REMINDER_NAMESPACE = uuid.UUID("9d2a6c13-3f8b-4a71-b0e4-5e7f2c1d0055")


@dataclass(frozen=True)
class EnrolmentOutcome:
    """What an enrolment did: the new schedule, reminders to publish, (programme, outcome) pairs."""

    schedule: PersonSchedule
    reminders: tuple[ReminderScheduled, ...]
    outcomes: tuple[tuple[str, str], ...]


def reminder_id(person: str, programme: str) -> str:
    # One reminder per person and programme: re-enrolment or redelivery finds the same id.
    return str(uuid.uuid5(REMINDER_NAMESPACE, f"{person}/{programme}"))


def schedule_reminders(
    enrolment: PersonEnrolled, *, enrolled_at: datetime, schedule: PersonSchedule
) -> EnrolmentOutcome:
    """Enrol the person and plan a reminder for each programme their age band is invited to."""
    try:
        programmes = programmes_for(enrolment.age_band_from, enrolment.age_band_to)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None
    person = enrolment.person_pseudonym
    channel = choose_channel(enrolment.allowed_channels)
    new_schedule = schedule.with_enrolment()
    reminders: list[ReminderScheduled] = []
    outcomes: list[tuple[str, str]] = []
    for programme in programmes:
        rid = reminder_id(person, programme.name)
        if new_schedule.has_reminder(rid):
            outcomes.append((programme.name, "already_scheduled"))
            continue
        if channel is None:
            outcomes.append((programme.name, "no_channel"))
            continue
        reminder = Reminder(rid, programme.name, channel, due_at(enrolled_at))
        new_schedule = new_schedule.with_reminder(reminder)
        reminders.append(
            ReminderScheduled(
                reminder_id=rid,
                person_pseudonym=person,
                programme=programme.name,
                channel=channel,
                due_at=timestamp(reminder.due_at),
            )
        )
        outcomes.append((programme.name, "scheduled"))
    return EnrolmentOutcome(new_schedule, tuple(reminders), tuple(outcomes))
