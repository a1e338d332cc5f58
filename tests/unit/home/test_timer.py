"""The home's timer on the kernel: the next deadline of a home is the moment its next step
is due (never a moment at which nothing is), and firing takes every step due once, in
the home's experiment, with the state that records it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from emeuse.home.v1.home_events_pb2 import IncidentAction, VisitPlanned
from emeuse.runtime.envelope import timestamp
from services.home.configuration import record_home
from services.home.deadlines import next_step_at
from services.home.domain.home import HomeState
from services.home.domain.rhythm import LOCAL
from services.home.handlers import plan_visit
from services.home.incidents import apply_action, due_actions
from services.home.processing import HOMES, home_deadline, take_due_steps
from tests.unit.home.homes import (
    DAUGHTER,
    ENROLLED_AT,
    NEIGHBOUR,
    RESIDENT,
    action,
    at,
    door,
    enrolled,
    fall,
    feed,
    home,
    motion,
    raised,
    run,
)

FELL = at("10:00")


class Tx:
    """A transaction of the home's partition, as the kernel hands it to a timer."""

    def __init__(self, state: HomeState, now: datetime) -> None:
        self.partition = 0
        self.now = now
        self.values: dict[tuple[str, str], Any] = {(HOMES, RESIDENT): state.to_json()}
        self.published: list[tuple[Any, dict[str, Any]]] = []
        self.puts = 0
        self.on_commit: list[Any] = []

    def count(self, metric: Any, amount: float = 1.0) -> None:
        self.on_commit.append(lambda: metric.inc(amount))

    def get(self, table: str, key: str) -> Any:
        return self.values.get((table, key))

    def put(self, table: str, key: str, value: Any) -> None:
        self.values[(table, key)] = value
        self.puts += 1

    def publish(self, spec: Any, message: Any, **options: Any) -> None:
        self.published.append((message, options))

    def state(self) -> HomeState:
        return HomeState.from_json(self.values[(HOMES, RESIDENT)])


def fire(state: HomeState, now: datetime) -> Tx:
    tx = Tx(state, now)
    asyncio.run(take_due_steps(RESIDENT, tx))  # type: ignore[arg-type]
    return tx


def deadline(state: HomeState, now: datetime) -> datetime | None:
    return home_deadline(RESIDENT, lambda table: state.to_json(), now)


def a_fall_at_10(experiment: str = "") -> HomeState:
    state = record_home(
        home(), state=HomeState(), territory="55", now=ENROLLED_AT, experiment=experiment
    )
    state, _ = feed(state, motion(at("09:30")), fall(FELL))
    return state


def test_a_fall_s_deadline_is_when_the_daughter_s_time_to_answer_ends():
    assert deadline(a_fall_at_10(), FELL) == at("10:10")


def test_the_timer_passes_the_fall_to_the_neighbour_once_in_the_home_s_experiment():
    state = a_fall_at_10(experiment="exp-domicile")
    due = deadline(state, FELL)
    assert due is not None
    tx = fire(state, due)
    [(escalated, options)] = tx.published
    assert escalated.notified.contact_id == NEIGHBOUR
    assert options["experiment_id"] == "exp-domicile" and options["cause"] is None
    # The step is stored with it: fired again (a retry), nothing is published twice.
    assert fire(tx.state(), due).published == []
    assert deadline(tx.state(), due) == due + timedelta(minutes=10)


def test_an_acknowledged_fall_stops_its_steps_and_leaves_the_inactivity_watch():
    state = a_fall_at_10()
    [incident] = state.incidents.values()
    taken = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_ACKNOWLEDGE,
            incident_id=incident.incident_id,
            contact_id=DAUGHTER,
        ),
        state=state,
        now=at("10:03"),
    ).state
    # The fall was her last movement: inactivity two hours after it, no step before.
    assert deadline(taken, at("10:03")) == at("12:00")


def test_inactivity_is_due_two_hours_after_the_last_motion_in_the_active_hours():
    state, _ = feed(enrolled(), motion(at("07:20")))
    assert deadline(state, at("07:21")) == at("09:20")


def test_inactivity_after_an_evening_motion_is_due_the_next_morning():
    state, _ = feed(enrolled(), motion(at("21:30")))
    # 23:30 is in the quiet hours: two hours after she usually wakes instead.
    assert deadline(state, at("21:31")) == at("09:00", day=1)


def test_an_inactivity_a_contact_resolved_is_due_again_only_the_next_day():
    state, _ = feed(enrolled(), motion(at("07:05")))
    state, outcomes = run(state, at("09:04"), at("09:06"))
    [incident] = raised(outcomes)
    state = apply_action(
        action(
            action=IncidentAction.INCIDENT_ACTION_RESOLVE,
            incident_id=incident.incident_id,
            contact_id=DAUGHTER,
            outcome=2,
        ),
        state=state,
        now=at("09:30"),
    ).state
    assert deadline(state, at("09:30")) == at("09:00", day=1)


def test_a_visit_with_no_check_in_is_due_when_its_delay_ends():
    state, _ = feed(enrolled(), motion(at("07:30")))
    visit = VisitPlanned(
        visit_id="visit-1",
        resident_pseudonym=RESIDENT,
        aide_id="aide-0107",
        planned_start=timestamp(at("08:30")),
    )
    visit.planned_duration.FromTimedelta(timedelta(minutes=45))
    state = plan_visit(visit, state=state, now=at("07:40")).state
    assert deadline(state, at("07:40")) == at("09:00")


def test_a_night_door_is_due_when_her_time_to_come_back_ends():
    state, _ = feed(enrolled(), door(at("03:00")))
    assert deadline(state, at("03:01")) == at("03:15")


def test_a_home_not_enrolled_has_no_deadline():
    assert next_step_at(HomeState(), FELL) is None


def kernel_timer(state: HomeState, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """The kernel's due-index: fire at each deadline the home gives, until `end`."""
    facts = []
    now = start
    while (due := next_step_at(state, now)) is not None and due <= end:
        now = max(due, now)
        actions = due_actions(RESIDENT, state, now)
        assert actions, f"fired at {now} for nothing"
        for step in actions:
            outcome = apply_action(step, state=state, now=now)
            state = outcome.state
            facts += [(f.spec.name, f.event_id) for f in outcome.facts]
    return facts


def minute_timer(state: HomeState, start: datetime, end: datetime) -> list[tuple[str, str]]:
    _, outcomes = run(state, start, end)
    return [(f.spec.name, f.event_id) for o in outcomes for f in o.facts]


def test_the_deadlines_fire_the_same_steps_as_a_timer_ticking_each_minute():
    # A fall nobody answers, a night outside (the door's report already in), a morning
    # without motion.
    state, _ = feed(enrolled(), motion(at("07:05")), fall(FELL), door(at("23:30")))
    start, end = at("10:00"), at("12:00", day=1)
    by_deadline = kernel_timer(state, start, end)
    assert by_deadline == minute_timer(state, start, end)
    names = [name.split(".")[2] for name, _ in by_deadline]
    # The fall passed to the neighbour then the SAMU; the door not closed again by 23:45,
    # and no movement the next morning by 9:00, each raised and passed to the neighbour.
    assert names.count("incident-raised") == 2
    assert names.count("incident-escalated") == 4


def test_a_missed_visit_and_a_silent_device_fire_as_a_timer_ticking_each_minute_would():
    configured = home(thresholds={"device_offline_after": "5400s"})
    state = record_home(configured, state=HomeState(), territory="55", now=at("06:00"))
    state, _ = feed(state, motion(at("07:30")))
    visit = VisitPlanned(
        visit_id="visit-1",
        resident_pseudonym=RESIDENT,
        aide_id="aide-0107",
        planned_start=timestamp(at("08:30")),
    )
    visit.planned_duration.FromTimedelta(timedelta(minutes=45))
    state = plan_visit(visit, state=state, now=at("07:40")).state
    start, end = at("07:40"), at("20:00")
    by_deadline = kernel_timer(state, start, end)
    assert by_deadline == minute_timer(state, start, end)
    names = [name.split(".")[2] for name, _ in by_deadline]
    # Four silent devices (the motion sensor's from 9:00), the visit, inactivity: each once.
    assert names.count("incident-raised") == 6


def test_the_deadlines_follow_the_change_to_summer_time():
    saturday = datetime(2026, 3, 28, 20, 0, tzinfo=LOCAL)
    state = record_home(home(), state=HomeState(), territory="55", now=saturday)
    state, _ = feed(state, motion(saturday))
    start, end = saturday, saturday + timedelta(days=2)
    by_deadline = kernel_timer(state, start, end)
    assert by_deadline == minute_timer(state, start, end)
    # Sunday 9:00 (summer time), two hours after she usually wakes.
    assert deadline(state, saturday) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_a_home_s_deadline_is_read_as_a_utc_instant():
    due = deadline(a_fall_at_10(), FELL)
    assert due is not None and due.utcoffset() == timedelta(0) and due.tzinfo is UTC


def test_inactivity_fired_just_after_bedtime_moves_the_deadline_to_the_next_morning():
    state, _ = feed(enrolled(), motion(at("19:59")))
    due = deadline(state, at("20:00"))
    assert due == at("21:59")
    tx = fire(state, at("22:00"))  # fired late: quiet hours now, nothing is due
    # Nothing changes: the kernel asks for the deadline again (tests/unit/kernel).
    assert tx.published == [] and tx.puts == 0
    assert deadline(tx.state(), at("22:00")) == at("09:00", day=1)


def test_an_incident_the_timer_detects_is_in_the_home_s_experiment():
    """Inactivity and devices gone silent are found by the timer alone, with no event to
    inherit an experiment from: the home's is used, not the service's own."""
    state = record_home(
        home(), state=HomeState(), territory="55", now=ENROLLED_AT, experiment="exp-domicile"
    )
    state, _ = feed(state, motion(at("09:30")))
    due = deadline(state, at("09:30"))
    assert due is not None
    tx = fire(state, due)
    assert tx.published, "the timer found nothing at its own deadline"
    assert {type(m).__name__ for m, _ in tx.published} == {"IncidentRaised"}
    assert {(o["experiment_id"], o["cause"]) for _, o in tx.published} == {("exp-domicile", None)}
