"""Access agents: chronic alerts become requests; one scheduler per territory's agenda.

`request_for_alerts` reads patient-keyed alerts and publishes territory-keyed requests.
`schedule` is the single writer of each territory's agenda. A timer asks it to flag
requests past their booking delay and keeps the agenda gauges.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import faust
import structlog
from prometheus_client import Counter, Gauge, Histogram

from emeuse.access.v1.access_events_pb2 import ConsultationRequested, SlotBooked, Urgency
from emeuse.registry import (
    ALERT_RAISED,
    AVAILABILITY_PUBLISHED,
    BOOKING_ACTION_REQUESTED,
    CONSULTATION_REQUESTED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    PLACE_REGISTERED,
    PRACTITIONER_REGISTERED,
)
from emeuse.runtime.bus import Event
from emeuse.runtime.envelope import CODE_OF_TERRITORY, TERRITORY_CODES, territory_from_code
from emeuse.runtime.service import Runtime
from emeuse.runtime.timers import AskedSteps
from services.access import handlers, scheduling
from services.access.chronic_client import ChronicClient
from services.access.config import AccessSettings
from services.access.domain.agenda import booking_deadline
from services.access.scheduling import Agenda, AgendaTables, Result
from services.access.topics import AGENDA_INPUTS

log = structlog.get_logger("emeuse.access")
REQUESTS = Counter(
    "emeuse_access_requests_total",
    "Requests by urgency, territory and what became of them "
    "(received, booked, flagged, cancelled, completed, no_show).",
    ["urgency", "territory", "outcome"],
)
REQUEST_TO_BOOKING = Histogram(
    "emeuse_access_request_to_booking_seconds",
    "Time from a request to its booking.",
    ["urgency"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800),
)
REQUEST_TO_CONSULTATION = Histogram(
    "emeuse_access_request_to_consultation_seconds",
    "Time from a request to the start of its consultation.",
    ["urgency"],
    buckets=(300, 900, 3600, 7200, 14400, 43200, 86400, 259200, 604800, 1209600),
)
SLOT_UTILISATION = Gauge(
    "emeuse_access_slot_utilisation",
    "Booked over published slots not started yet, per territory (0 to 1).",
    ["territory"],
)
UNMET_REQUESTS = Gauge(
    "emeuse_access_unmet_requests",
    "Requests waiting past their urgency's booking delay, per territory and urgency.",
    ["territory", "urgency"],
)
WAITING_REQUESTS = Gauge(
    "emeuse_access_waiting_requests",
    "Requests waiting for a slot, per territory and urgency.",
    ["territory", "urgency"],
)
TIMER_INTERVAL_S = 1.0
GAUGES_EVERY_S = 5.0
REASK_AFTER_S = 10.0


def _urgency(value: int) -> str:
    return Urgency.Name(value).removeprefix("URGENCY_").lower()  # type: ignore[arg-type]


def start_agents(
    rt: Runtime, tables: AgendaTables, chronic: ChronicClient, settings: AccessSettings
) -> None:
    async def ask_scheduler(request: ConsultationRequested | None, event: Event) -> None:
        """Pass another service's request on to the territory's scheduler (its subject is
        the patient; its id derives from the cause, so a redelivery asks once)."""
        if request is None:
            return
        await rt.bus.publish(
            CONSULTATION_REQUESTED,
            request,
            key=request.territory,
            subject_pseudonym=request.patient_pseudonym,
            occurred_at=datetime.now(UTC),
            cause=event.envelope,
            event_id=request.request_id,
        )
        log.info("request.asked", request_id=request.request_id, cause_id=request.cause_id)

    async def request_for_alert(event: Event) -> None:
        territory = CODE_OF_TERRITORY[event.envelope.territory]
        request = await handlers.request_for_alert(
            event.message,
            territory=territory,
            care_summary=chronic.care_summary,
            now=datetime.now(UTC),
        )
        await ask_scheduler(request, event)

    async def request_for_incident(event: Event) -> None:
        territory = CODE_OF_TERRITORY[event.envelope.territory]
        request = handlers.request_for_incident(
            event.message, territory=territory, now=datetime.now(UTC)
        )
        await ask_scheduler(request, event)

    async def publish(agenda: Agenda, result: Result, event: Event) -> None:
        for fact in result.facts:
            await rt.bus.publish(
                fact.spec,
                fact.message,
                key=agenda.territory,
                subject_pseudonym=getattr(fact.message, "patient_pseudonym", ""),
                occurred_at=datetime.now(UTC),
                cause=event.envelope,
                event_id=fact.event_id,
            )
            booked = agenda.request(getattr(fact.message, "request_id", ""))
            if isinstance(fact.message, SlotBooked) and booked and booked.bookings_made == 1:
                # A request's first booking only: a reschedule or rebooking is not a new one.
                urgency = _urgency(booked.urgency)
                REQUEST_TO_BOOKING.labels(urgency).observe(fact.message.waited.ToSeconds())
                REQUESTS.labels(urgency, agenda.territory, "booked").inc()
            log.info(fact.spec.name.split(".")[2].replace("-", "."), event_id=fact.event_id)
        for seen in result.observations:
            urgency = _urgency(seen.urgency)
            REQUESTS.labels(urgency, agenda.territory, seen.what).inc()
            if seen.what == "consulted":
                REQUEST_TO_CONSULTATION.labels(urgency).observe(seen.seconds)

    def agenda_of(event: Event) -> Agenda:
        # Staged: the tables are written after the events are on the broker (commit()).
        return Agenda(event.message.territory, tables, staged=True)

    async def on_agenda_input(event: Event) -> None:
        agenda, now, message = agenda_of(event), datetime.now(UTC), event.message
        if event.topic == PRACTITIONER_REGISTERED.name:
            result = scheduling.register_practitioner(agenda, message, now)
        elif event.topic == PLACE_REGISTERED.name:
            result = scheduling.register_place(agenda, message, event.envelope.event_id)
        elif event.topic == AVAILABILITY_PUBLISHED.name:
            result = scheduling.publish_availability(agenda, message, now)
        elif event.topic == CONSULTATION_REQUESTED.name:
            result = scheduling.request_consultation(agenda, message, now)
        else:
            result = scheduling.apply_action(
                agenda,
                message,
                now,
                delays=settings.booking_delays,
                coordinators=settings.coordinators,
            )
        log.info("agenda.changed", topic=event.topic, outcome=result.outcome)
        await publish(agenda, result, event)
        agenda.commit()

    @rt.app.agent(rt.bus.topic(ALERT_RAISED), name="request_for_alerts")
    async def request_for_alerts(records: faust.StreamT) -> None:
        await rt.bus.process(records, ALERT_RAISED, request_for_alert)

    @rt.app.agent(rt.bus.topics(INCIDENT_RAISED, INCIDENT_RESOLVED), name="request_for_falls")
    async def request_for_falls(records: faust.StreamT) -> None:
        await rt.bus.process_each(
            records,
            {INCIDENT_RAISED: request_for_incident, INCIDENT_RESOLVED: request_for_incident},
        )

    @rt.app.agent(rt.bus.topics(*AGENDA_INPUTS), name="schedule")
    async def schedule(records: faust.StreamT) -> None:
        await rt.bus.process_each(records, {spec: on_agenda_input for spec in AGENDA_INPUTS})

    asked = AskedSteps(REASK_AFTER_S)
    last_gauges = [0.0]

    @rt.app.timer(interval=TIMER_INTERVAL_S, name="access.fire_due_timers")
    async def fire_due_timers() -> None:
        """Ask each local territory's scheduler to flag requests past their delay."""
        now, clock = datetime.now(UTC), time.monotonic()
        gauges = clock - last_gauges[0] >= GAUGES_EVERY_S
        for territory in TERRITORY_CODES:
            if not rt.router.holds(
                CONSULTATION_REQUESTED.name, CONSULTATION_REQUESTED.partitions, territory
            ):
                if gauges:
                    forget_gauges(territory)  # another instance reports it now
                continue
            agenda = Agenda(territory, tables)
            try:
                for action in scheduling.due_delays(agenda, now, settings.booking_delays):
                    if asked.recently_asked(action.action_id, clock):
                        continue
                    asked.mark(action.action_id, clock)
                    await rt.bus.publish(
                        BOOKING_ACTION_REQUESTED,
                        action,
                        key=territory,
                        subject_pseudonym="",
                        occurred_at=now,
                        territory=territory_from_code(territory),
                        event_id=action.action_id,
                    )
                if gauges:
                    set_gauges(agenda, now)
            except Exception as exc:  # a broker blip: asked again next round
                log.error("timer.failed", error=type(exc).__name__)
        if gauges:
            last_gauges[0] = clock
        asked.forget_old(clock)

    def forget_gauges(territory: str) -> None:
        for gauge, labels in (
            (SLOT_UTILISATION, [(territory,)]),
            (WAITING_REQUESTS, [(territory, _urgency(u)) for u in (1, 2, 3, 4)]),
            (UNMET_REQUESTS, [(territory, _urgency(u)) for u in (1, 2, 3, 4)]),
        ):
            for label in labels:
                with contextlib.suppress(KeyError):
                    gauge.remove(*label)

    def set_gauges(agenda: Agenda, now: datetime) -> None:
        upcoming = [s for s in agenda.slots() if s.start >= now]
        booked = sum(1 for s in upcoming if not s.free)
        SLOT_UTILISATION.labels(agenda.territory).set(booked / len(upcoming) if upcoming else 0)
        waiting: dict[int, int] = {u: 0 for u in (1, 2, 3, 4)}
        unmet: dict[int, int] = {u: 0 for u in (1, 2, 3, 4)}
        for request in agenda.waiting():
            waiting[request.urgency] = waiting.get(request.urgency, 0) + 1
            if booking_deadline(request, settings.booking_delays) <= now:
                unmet[request.urgency] = unmet.get(request.urgency, 0) + 1
        for urgency in waiting:
            WAITING_REQUESTS.labels(agenda.territory, _urgency(urgency)).set(waiting[urgency])
            UNMET_REQUESTS.labels(agenda.territory, _urgency(urgency)).set(unmet[urgency])
