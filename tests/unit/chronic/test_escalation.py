"""Escalation: an alert nobody acknowledges within 30 minutes goes to the next member of
the care team, once per step, even across a restart of the service."""

import asyncio
from datetime import timedelta

from prometheus_client import REGISTRY

from emeuse.chronic.v1.chronic_events_pb2 import AlertAction, AlertActionRequested
from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import Tx
from emeuse.registry import ALERT_ACKNOWLEDGED, ALERT_ESCALATED, ALERT_RAISED, dead_letter_topic
from emeuse.runtime import envelope as env
from emeuse.runtime.envelope import CODE_OF_TERRITORY
from services.chronic.alerts import apply_action, due_actions
from services.chronic.care_plan import record_care_plan
from services.chronic.domain.monitoring import PatientState
from services.chronic.processing import CARE_PLANS, STATES, take_due_steps
from tests.unit.chronic.plans import (
    COORDINATOR,
    GP,
    INR,
    NOW,
    NURSE,
    PATIENT,
    TERRITORY,
    anticoagulation_plan,
    in_force,
)
from tests.unit.chronic.readings import action, evaluate, only, published, reading, specs

PLAN = in_force(anticoagulation_plan())
LAST_MEMBER = "emeuse_chronic_alerts_at_last_member_total"
ESCALATION_DUE = AlertAction.ALERT_ACTION_ESCALATION_DUE


def critical_inr(plan=PLAN):
    """INR 5.6 measured five minutes ago: a critical alert to the GP, raised at NOW."""
    outcome = evaluate(reading(INR, 5.6, "inr-1", NOW - timedelta(minutes=5)), plan)
    return outcome.state, only(outcome, ALERT_RAISED).alert_id


def after(minutes):
    return NOW + timedelta(minutes=minutes)


def escalate(state, at):
    """What the timer asks at `at`, applied: the new state and the escalations published."""
    escalated = []
    for due in due_actions(PATIENT, PLAN, state, at):
        outcome = apply_action(due, plan=PLAN, state=state, now=at)
        state = outcome.state
        escalated += published([outcome], ALERT_ESCALATED)
    return state, escalated


def test_nothing_is_due_before_the_acknowledgement_delay():
    state, _ = critical_inr()
    assert due_actions(PATIENT, PLAN, state, after(29)) == []


def test_after_30_minutes_unacknowledged_step_1_is_due():
    state, alert_id = critical_inr()
    [due] = due_actions(PATIENT, PLAN, state, after(30))
    assert due.action == ESCALATION_DUE
    assert (due.alert_id, due.escalation_step, due.patient_pseudonym) == (alert_id, 1, PATIENT)


def test_step_1_notifies_the_member_of_rank_2():
    state, alert_id = critical_inr()
    [due] = due_actions(PATIENT, PLAN, state, after(30))
    outcome = apply_action(due, plan=PLAN, state=state, now=after(30))
    assert outcome.outcome == "escalated"
    assert specs(outcome) == [ALERT_ESCALATED]
    escalated = only(outcome, ALERT_ESCALATED)
    assert (escalated.alert_id, escalated.step) == (alert_id, 1)
    assert (escalated.notified.member_id, escalated.notified.escalation_rank) == (NURSE, 2)
    assert [m.member_id for m in outcome.state.alerts[alert_id].notified] == [GP, NURSE]


def test_the_same_step_applied_twice_escalates_once():
    state, _ = critical_inr()
    [due] = due_actions(PATIENT, PLAN, state, after(30))
    once = apply_action(due, plan=PLAN, state=state, now=after(30))
    twice = apply_action(due, plan=PLAN, state=once.state, now=after(31))
    assert (twice.outcome, twice.facts) == ("duplicate", [])
    assert twice.state == once.state


def test_a_stale_step_after_a_later_one_does_nothing():
    state, alert_id = critical_inr()
    state, first = escalate(state, after(30))
    state, second = escalate(state, after(60))
    assert [(e.step, e.notified.member_id) for e in first + second] == [
        (1, NURSE),
        (2, COORDINATOR),
    ]
    # A step-1 tick that crossed step 2 (another id, e.g. asked again by another instance).
    stale = AlertActionRequested(
        action_id="tick-late",
        patient_pseudonym=PATIENT,
        action=ESCALATION_DUE,
        alert_id=alert_id,
        escalation_step=1,
    )
    # Applied when step 3 is due: still nothing, the nurse is not paged again.
    outcome = apply_action(stale, plan=PLAN, state=state, now=after(95))
    assert (outcome.outcome, outcome.facts) == ("not_due", [])
    assert outcome.state.alerts[alert_id].step == 2


def test_a_step_asked_before_it_is_due_does_nothing():
    state, alert_id = critical_inr()
    early = AlertActionRequested(
        action_id="tick-early",
        patient_pseudonym=PATIENT,
        action=ESCALATION_DUE,
        alert_id=alert_id,
        escalation_step=1,
    )
    outcome = apply_action(early, plan=PLAN, state=state, now=after(10))
    assert (outcome.outcome, outcome.facts) == ("not_due", [])


def test_an_acknowledgement_stops_escalation():
    state, alert_id = critical_inr()
    state, _ = escalate(state, after(30))
    ack = action(AlertAction.ALERT_ACTION_ACKNOWLEDGE, alert_id, action_id="ack-1", member_id=NURSE)
    taken = apply_action(ack, plan=PLAN, state=state, now=after(40))
    acknowledged = only(taken, ALERT_ACKNOWLEDGED)
    assert acknowledged.time_to_acknowledge.ToTimedelta() == timedelta(minutes=40)
    assert due_actions(PATIENT, PLAN, taken.state, after(300)) == []
    # A step-2 tick asked just before the acknowledgement arrives after it: nothing.
    late_tick = AlertActionRequested(
        action_id="tick-2",
        patient_pseudonym=PATIENT,
        action=ESCALATION_DUE,
        alert_id=alert_id,
        escalation_step=2,
    )
    outcome = apply_action(late_tick, plan=PLAN, state=taken.state, now=after(61))
    assert (outcome.outcome, outcome.facts) == ("not_due", [])


def test_the_chain_ends_with_its_last_member_the_lab_never_on_it():
    state, _ = critical_inr()
    notified = []
    for minutes in (30, 60, 90, 120, 150, 600):
        state, escalated = escalate(state, after(minutes))
        notified += [(e.step, e.notified.member_id) for e in escalated]
    assert notified == [(1, NURSE), (2, COORDINATOR)]
    assert due_actions(PATIENT, PLAN, state, after(600)) == []


def test_a_care_team_of_one_has_nobody_to_escalate_to():
    plan = anticoagulation_plan()
    del plan.care_team[1:]
    alone = in_force(plan)
    state, _ = critical_inr(alone)
    assert due_actions(PATIENT, alone, state, after(120)) == []


def restarted(state):
    """The state as a new instance reads it back from the table's changelog."""
    return PatientState.from_json(state.to_json())


def test_escalation_happens_exactly_once_across_restarts():
    state, _ = critical_inr()
    state = restarted(state)
    escalations = []
    # The timer ticks every minute; every tick runs on a freshly restored state, asks
    # whatever is due, and each ask is delivered twice (at-least-once).
    for minute in range(25, 45):
        at = after(minute)
        state = restarted(state)
        for due in due_actions(PATIENT, PLAN, state, at):
            for _ in range(2):
                outcome = apply_action(due, plan=PLAN, state=state, now=at)
                state = restarted(outcome.state)
                escalations += published([outcome], ALERT_ESCALATED)
    assert [(e.step, e.notified.member_id) for e in escalations] == [(1, NURSE)]


def test_a_due_step_asked_before_a_restart_is_applied_once_after_it():
    state, _ = critical_inr()
    [asked] = due_actions(PATIENT, PLAN, state, after(30))
    # The instance crashed after asking; the new owner asks again from the changelog.
    state = restarted(state)
    [asked_again] = due_actions(PATIENT, PLAN, state, after(31))
    assert asked_again.action_id == asked.action_id
    first = apply_action(asked, plan=PLAN, state=state, now=after(31))
    second = apply_action(asked_again, plan=PLAN, state=restarted(first.state), now=after(32))
    assert specs(first) == [ALERT_ESCALATED]
    assert second.outcome == "duplicate"


def test_a_critical_alert_passed_to_the_last_member_is_counted_for_the_operators():
    """Step 1 (the nurse) is not the end of the chain; step 2 (the coordinator) is."""
    stored_plan = record_care_plan(
        anticoagulation_plan(), previous=None, territory=TERRITORY, recorded_at=NOW
    )
    state, _ = critical_inr()
    labels = {"severity": "critical", "territory": TERRITORY}
    counted = []
    for minutes in (30, 60):
        store = {(CARE_PLANS, PATIENT): stored_plan, (STATES, PATIENT): state}
        tx = Tx(
            0,
            Origin("chronic", "emeuse/chronic", "x"),
            dead_letter_topic("chronic"),
            lambda table, key, store=store: store.get((table, key)),
            lambda table, key: 0,
        )
        tx.now = after(minutes)
        before = REGISTRY.get_sample_value(LAST_MEMBER, labels) or 0
        asyncio.run(take_due_steps(PATIENT, tx))
        for apply in tx.committed():
            apply()
        counted.append((REGISTRY.get_sample_value(LAST_MEMBER, labels) or 0) - before)
        state = tx.get(STATES, PATIENT)
    assert counted == [0, 1]


def test_an_escalation_the_timer_decides_is_in_the_experiment_the_patient_is_enrolled_in():
    """The timer's step has no event to inherit an experiment from: the plan's is used, so
    the evaluation counts the escalation with the patient's alerts, not in the service's own
    experiment."""
    stored_plan = record_care_plan(
        anticoagulation_plan(),
        previous=None,
        territory=TERRITORY,
        recorded_at=NOW,
        experiment="telesuivi-meuse",
    )
    state, _ = critical_inr()
    store = {(CARE_PLANS, PATIENT): stored_plan, (STATES, PATIENT): state}
    tx = Tx(
        0,
        Origin("chronic", "emeuse/chronic", "emeuse-platform"),
        dead_letter_topic("chronic"),
        lambda table, key: store.get((table, key)),
        lambda table, key: 0,
    )
    tx.now = after(30)
    asyncio.run(take_due_steps(PATIENT, tx))
    [record] = [r for r in tx.outputs if r.topic == ALERT_ESCALATED.name]
    envelope = env.from_headers(record.headers)
    assert (envelope.experiment_id, CODE_OF_TERRITORY[envelope.territory]) == (
        "telesuivi-meuse",
        TERRITORY,
    )
