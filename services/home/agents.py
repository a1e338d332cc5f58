"""Home agents: thin loops from the input topics to handlers and out to the bus.

One agent is the single writer of a home: its configuration, sensor events, visits and
incident actions (contacts' and the service's timers) arrive on one channel over
co-partitioned topics and are handled one at a time, so no two changes interleave.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import faust
import structlog
from faust.types import TableT
from prometheus_client import Counter, Gauge, Histogram

from emeuse.home.v1.home_events_pb2 import (
    ContactRole,
    IncidentAcknowledged,
    IncidentEscalated,
    IncidentKind,
    IncidentRaised,
    IncidentResolved,
)
from emeuse.registry import (
    HOME_CONFIGURED,
    INCIDENT_ACTION_REQUESTED,
    SENSOR_EVENT_REPORTED,
    VISIT_ENDED,
    VISIT_PLANNED,
    VISIT_STARTED,
)
from emeuse.runtime.bus import Bus, Event
from emeuse.runtime.envelope import CODE_OF_TERRITORY, territory_from_code
from emeuse.runtime.parsed import ParsedValues
from emeuse.runtime.service import Runtime
from emeuse.runtime.timers import AskedSteps
from services.home import handlers
from services.home.configuration import record_home
from services.home.domain.detection import Incident
from services.home.domain.home import HomeState
from services.home.incidents import Outcome, apply_action, due_actions

log = structlog.get_logger("emeuse.home")
SENSOR_EVENTS = Counter(
    "emeuse_home_sensor_events_total",
    "Sensor events handled, by kind and outcome.",
    ["kind", "outcome"],
)
INCIDENTS = Counter(
    "emeuse_home_incidents_total",
    "Incidents raised, by kind and territory.",
    ["kind", "territory"],
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "emeuse_home_incident_time_to_acknowledge_seconds",
    "Time from an incident to its acknowledgement by a contact, by kind.",
    ["kind"],
    buckets=(15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
)
ESCALATION_DEPTH = Histogram(
    "emeuse_home_incident_escalation_depth",
    "Escalation step an incident reached before a contact answered (or it closed), by kind.",
    ["kind"],
    buckets=(0, 1, 2, 3, 4, 5, 6, 8),
)
ESCALATIONS = Counter(
    "emeuse_home_incident_escalations_total",
    "Unacknowledged incidents passed to the next contact, by kind and step.",
    ["kind", "step"],
)
EMERGENCY_ESCALATIONS = Counter(
    "emeuse_home_emergency_escalations_total",
    "Incidents passed to the emergency service (SAMU, 15), by kind and territory.",
    ["kind", "territory"],
)
DEVICES_OFFLINE = Gauge(
    "emeuse_home_devices_offline",
    "Devices with an open offline incident in the homes this instance holds (sum instances).",
)
MISSED_VISITS = Counter(
    "emeuse_home_visits_missed_total",
    "Home-aide visits with no check-in in time, by territory.",
    ["territory"],
)
VISIT_DURATION = Histogram(
    "emeuse_home_visit_duration_seconds",
    "Home-aide visits: time from check-in to check-out.",
    buckets=(300, 600, 900, 1800, 2700, 3600, 5400, 7200, 10800),
)
VISIT_LATENESS = Histogram(
    "emeuse_home_visit_lateness_seconds",
    "Home-aide visits: check-in time after the planned start (0 when on time).",
    buckets=(0, 60, 300, 600, 900, 1800, 3600, 7200),
)
ACTIONS = Counter(
    "emeuse_home_incident_actions_total",
    "Incident actions and timer steps handled, by outcome.",
    ["outcome"],
)
TIMER_ERRORS = Counter(
    "emeuse_home_timer_errors_total",
    "Homes whose due steps could not be asked for (retried next round), by error type.",
    ["error"],
)
# Seconds between timer scans, and before a due step not yet applied is asked again.
TIMER_INTERVAL_S = 1.0
REASK_AFTER_S = 10.0


def _kind(kind: IncidentKind.ValueType) -> str:
    return IncidentKind.Name(kind).removeprefix("INCIDENT_KIND_").lower()


def start_agents(rt: Runtime, homes: TableT) -> None:
    def state_of(resident: str) -> HomeState:
        return HomeState.from_json(homes.get(resident))

    async def publish(resident: str, outcome: Outcome, event: Event) -> None:
        config = outcome.state.config
        territory = (
            config.territory if config else CODE_OF_TERRITORY.get(event.envelope.territory, "")
        )
        for fact in outcome.facts:
            await rt.bus.publish(
                fact.spec,
                fact.message,
                key=resident,
                subject_pseudonym=resident,
                occurred_at=datetime.now(UTC),
                cause=event.envelope,
                territory=territory_from_code(territory) if territory else None,
                experiment_id=(config.experiment or None) if config else None,
                event_id=fact.event_id,
            )
            _count(fact.message, territory, outcome.state)
            # "incident.raised", "incident.escalated"...: the fact's name, and ids only.
            fact_name = fact.spec.name.split(".")[2].replace("-", ".")
            log.info(fact_name, incident_id=getattr(fact.message, "incident_id", ""))
        homes[resident] = outcome.state.to_json()

    async def configure_home(event: Event) -> None:
        home = event.message
        before = state_of(home.resident_pseudonym)
        applied = f"configured|{event.envelope.event_id}"
        if before.has_seen(applied):
            # Delivered again (a replay after a rebalance or a crash): applied again, it would
            # number a new version, or bring back an older configuration for a moment.
            log.info("home.configured", outcome="redelivered")
            return
        state = record_home(
            home,
            state=before,
            territory=CODE_OF_TERRITORY.get(event.envelope.territory, ""),
            now=datetime.now(UTC),
            experiment=event.envelope.experiment_id,
        )
        state.remember(applied)
        homes[home.resident_pseudonym] = state.to_json()
        assert state.config is not None
        log.info("home.configured", version=state.config.version)

    async def record_sensor_event(event: Event) -> None:
        report = event.message
        resident = report.resident_pseudonym
        outcome = handlers.record_sensor_event(
            report, state=state_of(resident), now=datetime.now(UTC)
        )
        SENSOR_EVENTS.labels(handlers.sensor_of(report.kind).value, outcome.outcome).inc()
        log.info(
            "sensor_event.recorded", sensor_event_id=report.sensor_event_id, outcome=outcome.outcome
        )
        if outcome.outcome != "duplicate":
            await publish(resident, outcome, event)

    async def plan_visit(event: Event) -> None:
        visit = event.message
        outcome = handlers.plan_visit(
            visit, state=state_of(visit.resident_pseudonym), now=datetime.now(UTC)
        )
        log.info("visit.planned", visit_id=visit.visit_id, outcome=outcome.outcome)
        if outcome.outcome != "duplicate":
            await publish(visit.resident_pseudonym, outcome, event)

    async def check_in(event: Event) -> None:
        visit = event.message
        outcome = handlers.check_in(
            visit, state=state_of(visit.resident_pseudonym), now=datetime.now(UTC)
        )
        log.info("visit.checked_in", visit_id=visit.visit_id, outcome=outcome.outcome)
        if outcome.outcome != "duplicate":
            VISIT_LATENESS.observe(outcome.state.visits[visit.visit_id].lateness.total_seconds())
            await publish(visit.resident_pseudonym, outcome, event)

    async def check_out(event: Event) -> None:
        visit = event.message
        outcome = handlers.check_out(
            visit, state=state_of(visit.resident_pseudonym), now=datetime.now(UTC)
        )
        log.info("visit.checked_out", visit_id=visit.visit_id, outcome=outcome.outcome)
        if outcome.outcome != "duplicate":
            duration = outcome.state.visits[visit.visit_id].duration
            if duration is not None:
                VISIT_DURATION.observe(duration.total_seconds())
            await publish(visit.resident_pseudonym, outcome, event)

    async def act_on_incident(event: Event) -> None:
        action = event.message
        resident = action.resident_pseudonym
        outcome = apply_action(action, state=state_of(resident), now=datetime.now(UTC))
        ACTIONS.labels(outcome.outcome).inc()
        log.info("incident.action", action_id=action.action_id, outcome=outcome.outcome)
        if outcome.facts:
            await publish(resident, outcome, event)

    @rt.app.agent(rt.bus.topics(*HOME_INPUTS), name="support_homes")
    async def support_homes(records: faust.StreamT) -> None:
        await rt.bus.process_each(
            records,
            {
                HOME_CONFIGURED: configure_home,
                SENSOR_EVENT_REPORTED: record_sensor_event,
                VISIT_PLANNED: plan_visit,
                VISIT_STARTED: check_in,
                VISIT_ENDED: check_out,
                INCIDENT_ACTION_REQUESTED: act_on_incident,
            },
        )

    asked = AskedSteps(REASK_AFTER_S)
    # The timer only reads: each home's state is parsed once per change, not each second.
    parsed_homes = ParsedValues(HomeState.from_json)

    def timer_state_of(resident: str) -> HomeState:
        return parsed_homes.get(resident, homes.get(resident))

    @rt.app.timer(interval=TIMER_INTERVAL_S, name="home.fire_due_timers")
    async def fire_due_timers() -> None:
        """Ask each home's agent for every step due now (escalation, time-based detection)."""
        held = [
            resident
            for resident in list(homes.keys())
            if rt.router.holds(
                SENSOR_EVENT_REPORTED.name, SENSOR_EVENT_REPORTED.partitions, resident
            )
        ]
        parsed_homes.retain(held)
        await ask_due_steps(
            rt.bus, held, timer_state_of, asked, datetime.now(UTC), time.monotonic()
        )


async def ask_due_steps(
    bus: Bus,
    residents: list[str],
    state_of: Callable[[str], HomeState],
    asked: AskedSteps,
    now: datetime,
    clock: float,
) -> None:
    """One timer round over the homes this instance holds: publish each step due now,
    once per REASK_AFTER_S. One home's trouble (a broker blip, a state that does not
    read) is counted and retried next round; it never stops the timer for the others."""
    offline = 0
    for resident in residents:
        try:
            offline += await _ask_home(bus, resident, state_of(resident), asked, now, clock)
        except Exception as exc:
            TIMER_ERRORS.labels(type(exc).__name__).inc()
            log.error("timer.failed", error=type(exc).__name__)
    DEVICES_OFFLINE.set(offline)
    asked.forget_old(clock)


async def _ask_home(
    bus: Bus, resident: str, state: HomeState, asked: AskedSteps, now: datetime, clock: float
) -> int:
    """Ask for the home's due steps; the number of its devices with an open offline incident."""
    if state.config is None:
        return 0
    for action in due_actions(resident, state, now):
        if asked.recently_asked(action.action_id, clock):
            continue
        await bus.publish(
            INCIDENT_ACTION_REQUESTED,
            action,
            key=resident,
            subject_pseudonym=resident,
            occurred_at=now,
            territory=territory_from_code(state.config.territory),
            experiment_id=state.config.experiment or None,
            event_id=action.action_id,
        )
        asked.mark(action.action_id, clock)  # once taken: a failed step is asked next round
    return sum(
        1 for i in state.incidents.values() if i.is_open and i.kind == Incident.DEVICE_OFFLINE.value
    )


HOME_INPUTS = (
    HOME_CONFIGURED,
    SENSOR_EVENT_REPORTED,
    VISIT_PLANNED,
    VISIT_STARTED,
    VISIT_ENDED,
    INCIDENT_ACTION_REQUESTED,
)


def _count(message: object, territory: str, state: HomeState) -> None:
    if isinstance(message, IncidentRaised):
        INCIDENTS.labels(_kind(message.kind), territory).inc()
        if message.kind == IncidentKind.INCIDENT_KIND_VISIT_MISSED:
            MISSED_VISITS.labels(territory).inc()
    elif isinstance(message, IncidentEscalated):
        ESCALATIONS.labels(_kind(message.kind), str(message.notified.step)).inc()
        if message.notified.role == ContactRole.CONTACT_ROLE_EMERGENCY_SERVICE:
            EMERGENCY_ESCALATIONS.labels(_kind(message.kind), territory).inc()
    elif isinstance(message, IncidentAcknowledged):
        kind = _kind(message.kind)
        TIME_TO_ACKNOWLEDGE.labels(kind).observe(
            message.time_to_acknowledge.ToTimedelta().total_seconds()
        )
        ESCALATION_DEPTH.labels(kind).observe(message.step)
    elif isinstance(message, IncidentResolved):
        incident = state.incidents.get(message.incident_id)
        if incident is not None and incident.acknowledged_at is None:
            ESCALATION_DEPTH.labels(_kind(message.kind)).observe(incident.step)
