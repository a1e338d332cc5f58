"""What the home service handles; the kernel runs it (emeuse.kernel).

A home's configuration, sensor events, visits and incident actions share the resident's
partition, so they are handled one at a time, in order, each exactly once: no two changes
to a home interleave. Escalation steps and time-based detections (inactivity, night
wandering, a silent device, a missed visit) are a timer: the home's next deadline is kept
in a due-index and its steps are taken in a transaction when it comes, so a step and the
state that records it commit together and a step is published once, crash or not.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

import structlog

from emeuse.kernel.declare import Lookup, PartitionHook, Processor, Scan, TableSpec, Timer
from emeuse.kernel.sums import Figures, difference
from emeuse.kernel.tx import Tx
from emeuse.registry import (
    HOME_CONFIGURED,
    INCIDENT_ACTION_REQUESTED,
    SENSOR_EVENT_REPORTED,
    VISIT_ENDED,
    VISIT_PLANNED,
    VISIT_STARTED,
)
from emeuse.runtime.envelope import CODE_OF_TERRITORY, territory_from_code
from emeuse.runtime.events import Event
from services.home import figures, handlers
from services.home.configuration import record_home
from services.home.deadlines import next_step_at
from services.home.domain.home import HomeState
from services.home.domain.reports import sensor_of
from services.home.incidents import Outcome, apply_action, due_actions
from services.home.metrics import (
    ACTIONS,
    HELD,
    SENSOR_EVENTS,
    VISIT_DURATION,
    VISIT_LATENESS,
    count,
)

log = structlog.get_logger("emeuse.home")
HOMES = "resident_to_home"


def state_of(tx: Tx, resident: str) -> tuple[HomeState, Figures]:
    """The home's state, and its gauge's figures as stored (counted before any rule runs:
    the figures a store changes are those it reads here)."""
    stored = tx.get(HOMES, resident)
    return HomeState.from_json(stored), figures.of_home(stored)


def store(tx: Tx, resident: str, state: HomeState, before: Figures) -> Figures:
    """Store the home's new state; the gauge follows its change once the batch commits.
    Its figures now, for a next store in the same handler."""
    stored = state.to_json()
    tx.put(HOMES, resident, stored)
    after = figures.of_home(stored)
    delta = difference(before, after)
    if delta:
        tx.on_commit.append(partial(HELD.add, tx.partition, delta))
    return after


def publish(
    tx: Tx, resident: str, outcome: Outcome, event: Event | None, before: Figures
) -> Figures:
    """The outcome's facts into the transaction, in the home's territory and experiment,
    and the home's new state (its gauge's figures returned, as `store`)."""
    config = outcome.state.config
    territory = config.territory if config else ""
    if not territory and event is not None:
        territory = CODE_OF_TERRITORY.get(event.envelope.territory, "")
    for fact in outcome.facts:
        tx.publish(
            fact.spec,
            fact.message,
            key=resident,
            subject_pseudonym=resident,
            occurred_at=tx.now,
            cause=event.envelope if event else None,
            territory=territory_from_code(territory) if territory else None,
            experiment_id=(config.experiment or None) if config else None,
            event_id=fact.event_id,
        )
        tx.on_commit.append(partial(count, fact.message, territory, outcome.state))
        # "incident.raised", "incident.escalated"...: the fact's name, and ids only.
        fact_name = fact.spec.name.split(".")[2].replace("-", ".")
        log.info(fact_name, incident_id=getattr(fact.message, "incident_id", ""))
    return store(tx, resident, outcome.state, before)


async def configure_home(event: Event, tx: Tx) -> None:
    home = event.message
    before, counted = state_of(tx, home.resident_pseudonym)
    applied = f"configured|{event.envelope.event_id}"
    if before.has_seen(applied):
        # Delivered again (a replay by a partner or an operator): applied again, it would
        # number a new version, or bring back an older configuration for a moment.
        log.info("home.configured", outcome="redelivered")
        return
    state = record_home(
        home,
        state=before,
        territory=CODE_OF_TERRITORY.get(event.envelope.territory, ""),
        now=tx.now,
        experiment=event.envelope.experiment_id,
    )
    state.remember(applied)
    assert state.config is not None
    state.config.configured_by = event.envelope.event_id
    store(tx, home.resident_pseudonym, state, counted)
    log.info("home.configured", version=state.config.version)


async def record_sensor_event(event: Event, tx: Tx) -> None:
    report = event.message
    resident = report.resident_pseudonym
    state, counted = state_of(tx, resident)
    outcome = handlers.record_sensor_event(report, state=state, now=tx.now)
    tx.count(SENSOR_EVENTS.labels(sensor_of(report.kind).value, outcome.outcome))
    log.info(
        "sensor_event.recorded", sensor_event_id=report.sensor_event_id, outcome=outcome.outcome
    )
    if outcome.outcome != "duplicate":
        publish(tx, resident, outcome, event, counted)


async def plan_visit(event: Event, tx: Tx) -> None:
    visit = event.message
    state, counted = state_of(tx, visit.resident_pseudonym)
    outcome = handlers.plan_visit(visit, state=state, now=tx.now)
    log.info("visit.planned", visit_id=visit.visit_id, outcome=outcome.outcome)
    if outcome.outcome != "duplicate":
        publish(tx, visit.resident_pseudonym, outcome, event, counted)


async def check_in(event: Event, tx: Tx) -> None:
    visit = event.message
    state, counted = state_of(tx, visit.resident_pseudonym)
    outcome = handlers.check_in(visit, state=state, now=tx.now)
    log.info("visit.checked_in", visit_id=visit.visit_id, outcome=outcome.outcome)
    if outcome.outcome != "duplicate":
        tx.observe(VISIT_LATENESS, outcome.state.visits[visit.visit_id].lateness.total_seconds())
        publish(tx, visit.resident_pseudonym, outcome, event, counted)


async def check_out(event: Event, tx: Tx) -> None:
    visit = event.message
    state, counted = state_of(tx, visit.resident_pseudonym)
    outcome = handlers.check_out(visit, state=state, now=tx.now)
    log.info("visit.checked_out", visit_id=visit.visit_id, outcome=outcome.outcome)
    if outcome.outcome != "duplicate":
        duration = outcome.state.visits[visit.visit_id].duration
        if duration is not None:
            tx.observe(VISIT_DURATION, duration.total_seconds())
        publish(tx, visit.resident_pseudonym, outcome, event, counted)


async def act_on_incident(event: Event, tx: Tx) -> None:
    """A contact's acknowledgement or resolution (and, from before the kernel, a timer step
    asked on the topic: applied the same way, once)."""
    action = event.message
    resident = action.resident_pseudonym
    state, counted = state_of(tx, resident)
    outcome = apply_action(action, state=state, now=tx.now)
    tx.count(ACTIONS.labels(outcome.outcome))
    log.info("incident.action", action_id=action.action_id, outcome=outcome.outcome)
    if outcome.facts:
        publish(tx, resident, outcome, event, counted)


def home_deadline(resident: str, lookup: Lookup, now: datetime) -> datetime | None:
    """The home's next escalation step or time-based detection (deadlines.py)."""
    return next_step_at(HomeState.from_json(lookup(HOMES)), now)


async def take_due_steps(resident: str, tx: Tx) -> None:
    """Apply every step due now, in one transaction with the state that records it: each
    escalation, each detection is published once (its id derives from the incident and
    the step, or from the episode)."""
    state, counted = state_of(tx, resident)
    if state.config is None:
        return
    actions = due_actions(resident, state, tx.now)
    for action in actions:
        outcome = apply_action(action, state=state, now=tx.now)
        tx.count(ACTIONS.labels(outcome.outcome))
        log.info("incident.action", action_id=action.action_id, outcome=outcome.outcome)
        if outcome.facts:
            counted = publish(tx, resident, outcome, None, counted)
            state = outcome.state
    # Fired late with nothing due any more (inactivity due at 21:59, fired after bedtime),
    # nothing changes: the kernel asks `home_deadline` again, here for the next morning.


def count_partition(partition: int, scan: Scan) -> None:
    """A partition opened here: its gauge's figures counted from its stored homes."""
    HELD.opened(partition, figures.of_partition(scan, HOMES))


PROCESSOR = Processor(
    service="home",
    inputs={
        HOME_CONFIGURED: configure_home,
        SENSOR_EVENT_REPORTED: record_sensor_event,
        VISIT_PLANNED: plan_visit,
        VISIT_STARTED: check_in,
        VISIT_ENDED: check_out,
        INCIDENT_ACTION_REQUESTED: act_on_incident,
    },
    tables=(
        TableSpec(HOMES, "Configuration, devices, last activity, incidents, visits (domain.home)."),
    ),
    timers=(Timer("home-steps", (HOMES,), home_deadline, take_due_steps),),
    partition_hooks=(PartitionHook("gauges", count_partition, HELD.closed),),
)
