"""Prevention use cases: enrolments in, reminders and schedules out; no broker."""

from datetime import UTC, datetime, timedelta

import pytest

from emeuse.prevention.v1.prevention_events_pb2 import PersonEnrolled
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.pseudonym import random_pseudonym
from services.prevention.domain.schedule import PersonSchedule
from services.prevention.grpc_api import person_schedule
from services.prevention.handlers import schedule_reminders

ENROLLED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PERSON = random_pseudonym()


def enrolment(
    band_from: int, band_to: int, channels: tuple[str, ...] = ("sms", "app")
) -> PersonEnrolled:
    return PersonEnrolled(
        person_pseudonym=PERSON,
        age_band_from=band_from,
        age_band_to=band_to,
        allowed_channels=channels,
    )


def test_a_person_aged_50_54_gets_two_screening_reminders_a_week_after_enrolment() -> None:
    outcome = schedule_reminders(
        enrolment(50, 54), enrolled_at=ENROLLED_AT, schedule=PersonSchedule()
    )
    assert {r.programme for r in outcome.reminders} == {"screening.colorectal", "screening.breast"}
    for reminder in outcome.reminders:
        assert reminder.person_pseudonym == PERSON
        assert reminder.channel == "sms"
        assert reminder.due_at.ToDatetime(tzinfo=UTC) == ENROLLED_AT + timedelta(days=7)
    assert outcome.schedule.enrolled
    assert len(outcome.schedule.reminders) == 2


def test_a_person_aged_30_34_is_enrolled_with_no_reminder() -> None:
    outcome = schedule_reminders(
        enrolment(30, 34), enrolled_at=ENROLLED_AT, schedule=PersonSchedule()
    )
    assert outcome.reminders == ()
    assert outcome.schedule.enrolled


def test_an_age_band_60_55_is_refused_as_an_invalid_event() -> None:
    with pytest.raises(InvalidEventError, match="age band"):
        schedule_reminders(enrolment(60, 55), enrolled_at=ENROLLED_AT, schedule=PersonSchedule())


def test_no_allowed_channel_schedules_nothing_and_says_so() -> None:
    outcome = schedule_reminders(
        enrolment(11, 14, channels=("fax",)), enrolled_at=ENROLLED_AT, schedule=PersonSchedule()
    )
    assert outcome.reminders == ()
    assert outcome.outcomes == (("vaccination.hpv", "no_channel"),)


def test_enrolling_twice_schedules_once() -> None:
    first = schedule_reminders(
        enrolment(50, 54), enrolled_at=ENROLLED_AT, schedule=PersonSchedule()
    )
    second = schedule_reminders(
        enrolment(50, 54), enrolled_at=ENROLLED_AT + timedelta(days=3), schedule=first.schedule
    )
    assert second.reminders == ()
    assert {result for _, result in second.outcomes} == {"already_scheduled"}
    assert second.schedule == first.schedule


def test_the_same_enrolment_handled_twice_gives_the_same_reminder_ids() -> None:
    first = schedule_reminders(
        enrolment(11, 14), enrolled_at=ENROLLED_AT, schedule=PersonSchedule()
    )
    again = schedule_reminders(
        enrolment(11, 14), enrolled_at=ENROLLED_AT, schedule=PersonSchedule()
    )
    assert [r.reminder_id for r in first.reminders] == [r.reminder_id for r in again.reminders]


def test_the_schedule_survives_the_table_round_trip() -> None:
    outcome = schedule_reminders(
        enrolment(50, 54), enrolled_at=ENROLLED_AT, schedule=PersonSchedule()
    )
    assert PersonSchedule.from_json(outcome.schedule.to_json()) == outcome.schedule


def test_the_schedule_response_is_built_from_the_table_json_by_due_date() -> None:
    early = schedule_reminders(
        enrolment(11, 14), enrolled_at=ENROLLED_AT, schedule=PersonSchedule()
    )
    # A later re-enrolment in a wider band adds reminders due later, stored after.
    later = schedule_reminders(
        enrolment(11, 54), enrolled_at=ENROLLED_AT + timedelta(days=1), schedule=early.schedule
    )
    stored = later.schedule.to_json()
    stored["reminders"] = list(reversed(stored["reminders"]))  # type: ignore[call-overload]
    response = person_schedule(PERSON, stored)
    assert response.person_pseudonym == PERSON
    assert response.enrolled
    due = [r.due_at.ToDatetime(tzinfo=UTC) for r in response.reminders]
    assert due == sorted(due)
    assert response.reminders[0].programme == "vaccination.hpv"
    assert len(response.reminders) == 3


def test_someone_never_enrolled_gets_an_empty_schedule() -> None:
    response = person_schedule(PERSON, None)
    assert response.person_pseudonym == PERSON
    assert not response.enrolled
    assert list(response.reminders) == []
