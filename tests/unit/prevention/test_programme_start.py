"""Starting a programme: who may start which programme (checked against the person's
enrolment), and what a first start does with the steps whose day already passed."""

from datetime import UTC, date, datetime, timedelta

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, MonitoringProgramme
from emeuse.prevention.v1.prevention_events_pb2 import (
    Programme,
    ProgrammeEnded,
    ProgrammeEndReason,
    ProgrammeStarted,
)
from services.prevention.domain.person import PersonState
from services.prevention.handlers import (
    NotEligibleError,
    care_plan_updated,
    end_programme,
    skipped_steps,
    start_programme,
)
from tests.unit.prevention.people import NOW, enrolled, pregnancy

# Week 16 of this pregnancy began on 2027-03-01, the day before NOW; week 12 four weeks
# earlier: its last period began 2026-11-09, and its term, 41 SA + 0, is 2027-08-23.
DUE = date(2027, 8, 23)


def diabetes_education(person: str) -> ProgrammeStarted:
    return ProgrammeStarted(
        person_pseudonym=person,
        start_id=f"start-{person}",
        programme=Programme.PROGRAMME_DIABETES_EDUCATION,
    )


def test_a_step_past_by_a_day_is_due_at_once_and_one_past_by_weeks_is_skipped() -> None:
    person, state = enrolled(band=(25, 29))
    started = start_programme(pregnancy(person, DUE), state=state, now=NOW)
    planned = {m.step: m.due_at for m in started.state.scheduled() if m.programme == "pregnancy"}
    assert planned["week_16"] == NOW
    assert "week_12" not in planned
    assert skipped_steps(person, started.state, "pregnancy", NOW) == ["week_12"]


def test_a_step_past_by_exactly_two_days_is_still_sent() -> None:
    person, state = enrolled(band=(25, 29))
    two_days_on = datetime(2027, 3, 3, 9, 0, tzinfo=UTC)  # week 16 began at 10:00 on 1 March
    started = start_programme(pregnancy(person, DUE), state=state, now=two_days_on)
    assert any(m.step == "week_16" for m in started.state.scheduled())
    past_two_days = two_days_on + timedelta(seconds=1)
    later = start_programme(pregnancy(person, DUE), state=state, now=past_two_days)
    assert not any(m.step == "week_16" for m in later.state.scheduled())
    assert "week_16" in skipped_steps(person, later.state, "pregnancy", past_two_days)


def test_a_sent_step_is_not_reported_as_skipped_when_the_due_date_moves() -> None:
    person, state = enrolled(band=(25, 29))
    started = start_programme(pregnancy(person, DUE), state=state, now=NOW)
    week_16 = next(m for m in started.state.scheduled() if m.step == "week_16")
    week_16.status = "sent"
    weeks_on = NOW + timedelta(days=20)  # before week 20
    moved = start_programme(
        pregnancy(person, DUE + timedelta(days=1)), state=started.state, now=weeks_on
    )
    assert moved.state.messages[week_16.message_id].status == "sent"
    assert skipped_steps(person, moved.state, "pregnancy", weeks_on) == ["week_12"]


def test_the_diabetes_series_is_refused_to_a_person_not_monitored_for_diabetes() -> None:
    person, state = enrolled(band=(50, 54))
    with pytest.raises(NotEligibleError, match="monitored for diabetes"):
        start_programme(diabetes_education(person), state=state, now=NOW)


def test_a_person_monitored_for_diabetes_may_start_the_series_again_after_it_ended() -> None:
    person, state = enrolled(band=(50, 54))
    plan = CarePlanUpdated(
        patient_pseudonym=person,
        care_plan_id="cp-1",
        programme=MonitoringProgramme.MONITORING_PROGRAMME_DIABETES,
    )
    first = care_plan_updated(plan, state=state, now=NOW).state
    withdrawn = ProgrammeEnded(
        person_pseudonym=person,
        end_id="end-1",
        programme=Programme.PROGRAMME_DIABETES_EDUCATION,
        reason=ProgrammeEndReason.PROGRAMME_END_REASON_WITHDRAWN,
    )
    ended = end_programme(withdrawn, state=first, now=NOW).state
    assert not [m for m in ended.scheduled() if m.programme == "diabetes_education"]
    again = start_programme(diabetes_education(person), state=ended, now=NOW + timedelta(days=9))
    series = [m for m in again.state.scheduled() if m.programme == "diabetes_education"]
    assert again.outcome == "started" and len(series) == 6
    assert again.state.programmes["diabetes_education"].cycle == 2


def test_no_programme_starts_for_a_person_not_enrolled() -> None:
    with pytest.raises(NotEligibleError, match="not enrolled"):
        start_programme(pregnancy("psn-nobody", DUE), state=PersonState(), now=NOW)
