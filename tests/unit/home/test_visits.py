"""Home-aide visits: planned, checked in and out; a visit with no check-in in time
raises an incident to the aide service, cleared if the aide turns up late."""

from datetime import timedelta

import pytest

from emeuse.home.v1.home_events_pb2 import (
    IncidentKind,
    IncidentOutcome,
    VisitEnded,
    VisitPlanned,
    VisitStarted,
)
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import timestamp
from services.home.domain.home import ROLE_HOME_AIDE_SERVICE
from services.home.handlers import check_in, check_out, plan_visit
from tests.unit.home.homes import (
    AIDES,
    DAUGHTER,
    RESIDENT,
    at,
    enrolled,
    escalated,
    feed,
    home,
    motion,
    raised,
    resolved,
    run,
)

AIDE = "aide-0107"
START = at("08:30")


def planned(visit_id: str = "visit-1", missed_after: str = "") -> VisitPlanned:
    visit = VisitPlanned(
        visit_id=visit_id,
        resident_pseudonym=RESIDENT,
        aide_id=AIDE,
        planned_start=timestamp(START),
    )
    visit.planned_duration.FromTimedelta(timedelta(minutes=45))
    if missed_after:
        visit.missed_after.FromJsonString(missed_after)
    return visit


def arrived(when, visit_id: str = "visit-1") -> VisitStarted:
    return VisitStarted(
        visit_id=visit_id, resident_pseudonym=RESIDENT, aide_id=AIDE, checked_in_at=timestamp(when)
    )


def left(when, visit_id: str = "visit-1") -> VisitEnded:
    return VisitEnded(
        visit_id=visit_id, resident_pseudonym=RESIDENT, aide_id=AIDE, checked_out_at=timestamp(when)
    )


def with_visit(**kwargs):
    state, _ = feed(enrolled(), motion(at("07:30")))
    return plan_visit(planned(**kwargs), state=state, now=at("07:00")).state


def test_a_visit_on_time_is_measured_and_raises_nothing():
    state = with_visit()
    state = check_in(arrived(START + timedelta(minutes=5)), state=state, now=START).state
    state = check_out(left(START + timedelta(minutes=52)), state=state, now=at("09:30")).state
    visit = state.visits["visit-1"]
    assert visit.lateness == timedelta(minutes=5)
    assert visit.duration == timedelta(minutes=47)
    _, outcomes = run(state, at("08:31"), at("09:30"))
    assert [i for i in raised(outcomes) if i.kind == IncidentKind.INCIDENT_KIND_VISIT_MISSED] == []


def test_no_check_in_30_minutes_after_the_start_raises_a_missed_visit_to_the_aide_service():
    state = with_visit()
    state, before = run(state, at("08:31"), at("08:59"))
    assert raised(before) == []
    state, outcomes = run(state, at("09:00"), at("09:14"))
    [missed] = raised(outcomes)
    assert missed.kind == IncidentKind.INCIDENT_KIND_VISIT_MISSED
    assert missed.visit_id == "visit-1"
    assert (missed.notified.contact_id, missed.notified.role) == (AIDES, ROLE_HOME_AIDE_SERVICE)
    assert state.visits["visit-1"].incident_id == missed.incident_id
    # The aide service has 15 minutes, then her daughter is told.
    _, later = run(state, at("09:15"), at("09:16"))
    assert [e.notified.contact_id for e in escalated(later)] == [DAUGHTER]


def test_a_very_late_check_in_clears_the_missed_visit_and_records_the_lateness():
    state = with_visit()
    state, outcomes = run(state, at("09:00"), at("09:05"))
    [missed] = raised(outcomes)
    late = check_in(arrived(at("09:10")), state=state, now=at("09:10"))
    [cleared] = resolved([late])
    assert (cleared.incident_id, cleared.outcome) == (
        missed.incident_id,
        IncidentOutcome.INCIDENT_OUTCOME_CLEARED,
    )
    assert late.outcome == "late"
    assert late.state.visits["visit-1"].lateness == timedelta(minutes=40)


def test_a_visit_may_allow_more_delay():
    state = with_visit(missed_after="3600s")
    _, outcomes = run(state, at("09:00"), at("09:29"))
    assert raised(outcomes) == []


def test_check_out_without_check_in_is_refused():
    with pytest.raises(InvalidEventError, match="never checked in"):
        check_out(left(at("09:00")), state=with_visit(), now=at("09:00"))


def test_a_visit_for_an_unknown_visit_id_is_refused():
    with pytest.raises(InvalidEventError, match="no visit"):
        check_in(arrived(at("09:00"), visit_id="visit-404"), state=with_visit(), now=at("09:00"))


def test_planning_needs_an_aide_service():
    configuration = home()
    configuration.ClearField("aide_service")
    with pytest.raises(InvalidEventError, match="aide service"):
        plan_visit(planned(), state=enrolled(configuration), now=at("07:00"))


def test_the_same_visit_planned_twice_is_planned_once():
    state = with_visit()
    again = plan_visit(planned(), state=state, now=at("07:01"))
    assert again.outcome == "duplicate"


@pytest.mark.parametrize("visit_id", ["visite de Mme Martin", "Martin", ""])
def test_a_visit_id_that_is_free_text_is_refused_without_being_repeated(visit_id):
    for handle in (
        lambda: plan_visit(planned(visit_id), state=enrolled(), now=at("07:00")),
        lambda: check_in(arrived(at("09:00"), visit_id), state=with_visit(), now=at("09:00")),
        lambda: check_out(left(at("09:00"), visit_id), state=with_visit(), now=at("09:00")),
    ):
        with pytest.raises(InvalidEventError, match="not an id") as refused:
            handle()
        assert not visit_id or visit_id not in str(refused.value)
