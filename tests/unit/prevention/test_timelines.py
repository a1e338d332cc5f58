"""Programme timelines: pregnancy by week of amenorrhoea from the expected due date, the
French term at 41 SA + 0 (moving with it, stopping at the end), parental coaching by the
child's month-birthdays, the diabetes series for people monitored for diabetes, and the
steps already past when a programme starts."""

from datetime import UTC, date, datetime, timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, MonitoringProgramme
from emeuse.prevention.v1.prevention_events_pb2 import (
    DeliveryStatus,
    ProgrammeEnded,
    ProgrammeEndReason,
)
from emeuse.runtime.codec import InvalidEventError
from services.prevention.domain.person import Message, PersonState
from services.prevention.domain.timelines import amenorrhoea_age, pregnancy_timeline
from services.prevention.domain.timing import LOCAL
from services.prevention.handlers import (
    care_plan_updated,
    end_programme,
    enrol,
    record_receipt,
    send_message,
    start_programme,
)
from tests.unit.prevention.people import (
    DELAYS,
    NOW,
    enrolled,
    enrolment,
    pregnancy,
    receipt,
    send,
)

# The term, 41 SA + 0: the last period began 287 days before, on 2026-11-13, so NOW
# (2027-03-02) is 15 SA + 4.
DUE = date(2027, 8, 27)


def pregnancy_messages(state: PersonState) -> dict[str, datetime]:
    return {m.step: m.due_at for m in state.scheduled() if m.programme == "pregnancy"}


def test_weeks_count_from_the_term_at_41_weeks_minus_287_days_at_ten_in_the_morning() -> None:
    steps = {s.step: s.due_at for s in pregnancy_timeline(DUE)}
    # 2027-08-27 - 287 days = 2026-11-13; week 22 starts 154 days later, 2027-04-16 (UTC+2).
    assert steps["week_22"] == datetime(2027, 4, 16, 8, 0, tzinfo=UTC)
    assert steps["week_39"] == datetime(2027, 8, 13, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("due", [DUE, date(2027, 1, 1), date(2028, 3, 31)])
def test_every_pregnancy_step_lands_on_the_first_day_of_its_week_of_amenorrhoea(
    due: date,
) -> None:
    last_period = due - timedelta(days=7 * 41)  # the French term is 41 SA + 0
    for step in pregnancy_timeline(due):
        week = int(step.step.removeprefix("week_"))
        local = step.due_at.astimezone(LOCAL)
        assert (local.date() - last_period).days == 7 * week, step.step
        assert local.hour == 10
    assert amenorrhoea_age(due, due) == (41, 0)
    assert amenorrhoea_age(due, due - timedelta(days=8)) == (39, 6)


def test_a_pregnancy_started_mid_way_skips_the_steps_already_past() -> None:
    person, state = enrolled(band=(25, 29))
    outcome = start_programme(pregnancy(person, DUE), state=state, now=NOW)
    steps = pregnancy_messages(outcome.state)
    # 2027-03-02 is week 15: the first-trimester ultrasound (week 12) is not sent late.
    assert "week_12" not in steps
    assert set(steps) == {
        "week_16",
        "week_20",
        "week_22",
        "week_28",
        "week_32",
        "week_36",
        "week_39",
    }
    assert outcome.outcome == "started"


def test_when_the_due_date_moves_the_waiting_steps_move_with_it() -> None:
    person, state = enrolled(band=(25, 29))
    first = start_programme(pregnancy(person, DUE), state=state, now=NOW)
    before = pregnancy_messages(first.state)
    ids = {m.step: m.message_id for m in first.state.scheduled()}
    moved = start_programme(pregnancy(person, DUE + timedelta(days=14)), state=first.state, now=NOW)
    after = pregnancy_messages(moved.state)
    assert moved.outcome == "moved"
    assert set(after) == set(before)
    assert all(after[step] - before[step] == timedelta(days=14) for step in before)
    # The same messages, planned again: nobody gets a step twice.
    assert {m.step: m.message_id for m in moved.state.scheduled()} == ids
    assert {f.message.step for f in moved.facts} == set(before)


def test_a_due_date_moved_earlier_drops_the_steps_now_past_and_keeps_sent_ones() -> None:
    person, state = enrolled(band=(25, 29))
    first = start_programme(pregnancy(person, DUE), state=state, now=NOW)
    week_16 = next(m for m in first.state.scheduled() if m.step == "week_16")
    sent = send_message(
        send(person, week_16.message_id), campaign=None, state=first.state, now=week_16.due_at
    )
    assert sent.outcome == "sent"
    later = week_16.due_at + timedelta(days=3)
    moved = start_programme(
        pregnancy(person, DUE - timedelta(days=28)), state=sent.state, now=later
    )
    state = moved.state
    assert state.messages[week_16.message_id].status == "sent"
    week_20 = next(m for m in state.messages.values() if m.step == "week_20")
    assert week_20.status == "cancelled" and week_20.cancel_reason == "timeline_moved"
    assert (
        pregnancy_messages(state)["week_22"]
        == pregnancy_timeline(DUE - timedelta(days=28))[3].due_at
    )


def test_a_birth_stops_the_pregnancy_and_starts_parental_coaching() -> None:
    person, state = enrolled(band=(25, 29))
    started = start_programme(pregnancy(person, DUE), state=state, now=NOW)
    birth = ProgrammeEnded(
        person_pseudonym=person,
        end_id="end-1",
        programme=1,
        reason=ProgrammeEndReason.PROGRAMME_END_REASON_CHILD_BORN,
    )
    born_at = datetime(2027, 8, 10, 6, 0, tzinfo=UTC)
    birth.ended_at.FromDatetime(born_at)
    ended = end_programme(birth, state=started.state, now=born_at)
    assert pregnancy_messages(ended.state) == {}
    assert {
        m.cancel_reason
        for m in ended.state.messages.values()
        if m.programme == "pregnancy" and m.status == "cancelled"
    } == {"programme_ended"}
    coaching = [m for m in ended.state.scheduled() if m.programme == "parental_coaching"]
    assert coaching[0].step == "week_1"
    assert min(m.due_at for m in coaching).date() == date(2027, 8, 17)


def test_the_end_of_a_pregnancy_without_a_birth_sends_nothing_more() -> None:
    person, state = enrolled(band=(25, 29))
    started = start_programme(pregnancy(person, DUE), state=state, now=NOW)
    end = ProgrammeEnded(
        person_pseudonym=person,
        end_id="end-2",
        programme=1,
        reason=ProgrammeEndReason.PROGRAMME_END_REASON_PREGNANCY_ENDED,
    )
    ended = end_programme(end, state=started.state, now=NOW + timedelta(days=2))
    assert ended.state.scheduled() == []
    assert "parental_coaching" not in ended.state.programmes


def test_a_due_date_beyond_the_41_weeks_of_a_whole_pregnancy_is_refused() -> None:
    person, state = enrolled(band=(25, 29))
    whole = start_programme(
        pregnancy(person, NOW.date() + timedelta(days=287)), state=state, now=NOW
    )
    assert whole.outcome == "started"
    with pytest.raises(InvalidEventError, match="41 weeks"):
        start_programme(pregnancy(person, NOW.date() + timedelta(days=288)), state=state, now=NOW)


def test_a_person_newly_monitored_for_diabetes_gets_the_education_series_once() -> None:
    person, state = enrolled(band=(50, 54))
    plan = CarePlanUpdated(
        patient_pseudonym=person,
        care_plan_id="cp-1",
        programme=MonitoringProgramme.MONITORING_PROGRAMME_DIABETES,
    )
    first = care_plan_updated(plan, state=state, now=NOW)
    series = [m for m in first.state.scheduled() if m.programme == "diabetes_education"]
    assert first.outcome == "diabetes_series"
    assert series[0].template_id == "education.diabetes.welcome"
    assert len(series) == 6
    assert "chronic.diabetes" in first.state.attributes
    plan.care_plan_id = "cp-2"
    changed = care_plan_updated(plan, state=first.state, now=NOW + timedelta(days=3))
    assert changed.facts == []


def test_a_diabetic_person_enrolled_in_prevention_later_gets_the_series_then() -> None:
    from emeuse.runtime.pseudonym import random_pseudonym

    person = random_pseudonym()
    plan = CarePlanUpdated(
        patient_pseudonym=person,
        care_plan_id="cp-1",
        programme=MonitoringProgramme.MONITORING_PROGRAMME_DIABETES,
    )
    known = care_plan_updated(plan, state=PersonState(), now=NOW)
    assert known.state.scheduled() == []
    later = enrol(enrolment(person, band=(50, 54)), state=known.state, now=NOW, delays=DELAYS)
    assert any(m.programme == "diabetes_education" for m in later.state.scheduled())


def _sent_week_16() -> tuple[str, PersonState, Message]:
    person, state = enrolled(band=(25, 29), channels=("app", "sms"))
    first = start_programme(pregnancy(person, DUE), state=state, now=NOW)
    week_16 = next(m for m in first.state.scheduled() if m.step == "week_16")
    sent = send_message(
        send(person, week_16.message_id), campaign=None, state=first.state, now=week_16.due_at
    )
    assert sent.outcome == "sent"
    return person, sent.state, week_16


def _pregnancy_ended(person: str, state: PersonState, now: datetime) -> PersonState:
    end = ProgrammeEnded(
        person_pseudonym=person,
        end_id="end-lost",
        programme=1,
        reason=ProgrammeEndReason.PROGRAMME_END_REASON_PREGNANCY_ENDED,
    )
    return end_programme(end, state=state, now=now).state


def test_a_failure_receipt_after_the_pregnancy_ended_is_never_resent() -> None:
    person, sent, week_16 = _sent_week_16()
    ended = _pregnancy_ended(person, sent, week_16.due_at)
    failed = record_receipt(
        receipt(person, week_16.message_id, DeliveryStatus.DELIVERY_STATUS_FAILED),
        state=ended,
        now=week_16.due_at,
    )
    message = failed.state.messages[week_16.message_id]
    assert failed.outcome == "failed" and message.status == "failed"
    assert message.cancel_reason == "programme_ended"
    assert failed.facts == []


def test_a_programme_message_is_not_sent_once_its_programme_ended() -> None:
    person, sent, week_16 = _sent_week_16()
    retried = record_receipt(
        receipt(person, week_16.message_id, DeliveryStatus.DELIVERY_STATUS_FAILED),
        state=sent,
        now=week_16.due_at,
    )
    assert retried.outcome == "retry"
    ended = retried.state.model_copy(deep=True)
    ended.programmes["pregnancy"].ended_at = week_16.due_at  # ended, its messages not cancelled
    again = send_message(
        send(person, week_16.message_id), campaign=None, state=ended, now=week_16.due_at
    )
    assert again.outcome == "cancelled"
    assert again.state.messages[week_16.message_id].cancel_reason == "programme_ended"
    assert not [f for f in again.facts if f.spec.name.endswith("delivery-requested.v1")]


def test_steps_dropped_by_a_wrong_due_date_come_back_when_it_is_corrected() -> None:
    person, state = enrolled(band=(25, 29))
    right = start_programme(pregnancy(person, DUE), state=state, now=NOW).state
    wrong = start_programme(pregnancy(person, DUE - timedelta(days=70)), state=right, now=NOW)
    assert any(m.cancel_reason == "timeline_moved" for m in wrong.state.messages.values())
    fixed = start_programme(pregnancy(person, DUE), state=wrong.state, now=NOW)
    assert pregnancy_messages(fixed.state) == pregnancy_messages(right)
