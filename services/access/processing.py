"""What the access service handles; the kernel runs it (emeuse.kernel).

Every input has the same partitions, so they are one co-partitioned set of inputs:
- a territory's agenda inputs (directory, slots, requests, booking actions) are keyed by
  the territory: its partition task, one record at a time, is the agenda's only writer,
  and the tables it writes ("<territory>|<id>") live in that partition;
- chronic alerts (keyed by patient) and home incidents (by resident) write no table: the
  request they call for is published keyed by its territory, whose partition schedules it.
A request's booking delay is a timer on the request: when it runs out before a booking,
the request is flagged in a transaction of its territory's partition. The agenda gauges are
counted when a partition is opened here (a partition hook), then again by a timer of the
territory, set a few seconds after a change: one pass over the agenda per burst of
changes, rather than one per record or a scan of every territory each second.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import structlog

from emeuse.access.v1.access_events_pb2 import ConsultationRequested
from emeuse.kernel.declare import Lookup, PartitionHook, Processor, Scan, Timer
from emeuse.kernel.tx import Tx
from emeuse.registry import (
    ALERT_RAISED,
    AVAILABILITY_PUBLISHED,
    CONSULTATION_REQUESTED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    PLACE_REGISTERED,
    PRACTITIONER_REGISTERED,
)
from emeuse.runtime.envelope import CODE_OF_TERRITORY, territory_from_code
from emeuse.runtime.events import Event, Fact
from services.access import figures, handlers, scheduling
from services.access.config import AccessSettings
from services.access.domain.agenda import WAITING, RequestState, booking_deadline
from services.access.handlers import CareSummaryLookup
from services.access.metrics import HELD, count
from services.access.scheduling import Agenda, Result
from services.access.state import GAUGES, REQUESTS, TABLES, in_transaction, territory_of
from services.access.topics import AGENDA_INPUTS

log = structlog.get_logger("emeuse.access")
# The kernel keeps deadlines in whole milliseconds, cut short: one more, so a delay is
# never found not yet due when it fires.
ROUNDING = timedelta(milliseconds=1)
# How long after a change of a territory's agenda its gauges are set.
GAUGES_AFTER = timedelta(seconds=5)


def ask_scheduler(tx: Tx, request: ConsultationRequested | None, event: Event) -> None:
    """Pass another service's request on to the territory's scheduler (its subject is the
    patient; its id derives from the cause, so a redelivery asks once)."""
    if request is None:
        return
    tx.publish(
        CONSULTATION_REQUESTED,
        request,
        key=request.territory,
        subject_pseudonym=request.patient_pseudonym,
        occurred_at=tx.now,
        cause=event.envelope,
        event_id=request.request_id,
    )
    log.info("request.asked", request_id=request.request_id, cause_id=request.cause_id)


async def request_for_alert(event: Event, tx: Tx, *, care_summary: CareSummaryLookup) -> None:
    territory = CODE_OF_TERRITORY[event.envelope.territory]
    request = await handlers.request_for_alert(
        event.message, territory=territory, care_summary=care_summary, now=tx.now
    )
    ask_scheduler(tx, request, event)


async def request_for_incident(event: Event, tx: Tx) -> None:
    territory = CODE_OF_TERRITORY[event.envelope.territory]
    request = handlers.request_for_incident(event.message, territory=territory, now=tx.now)
    ask_scheduler(tx, request, event)


def experiment_of(agenda: Agenda, fact: Fact) -> str | None:
    """The experiment of the request a fact is about (a booking's, a flag's...), so it is
    counted with the request whatever caused it; None for other facts (their cause's)."""
    request_id = getattr(fact.message, "request_id", "")
    booking_id = getattr(fact.message, "booking_id", "")
    if not request_id and booking_id:
        booking = agenda.booking(booking_id)
        request_id = booking.request_id if booking else ""
    request = agenda.request(request_id) if request_id else None
    return (request.experiment or None) if request else None


def publish(tx: Tx, agenda: Agenda, result: Result, event: Event | None) -> None:
    """The result's facts into the transaction, keyed by the territory, and counted."""
    for fact in result.facts:
        tx.publish(
            fact.spec,
            fact.message,
            key=agenda.territory,
            subject_pseudonym=getattr(fact.message, "patient_pseudonym", ""),
            occurred_at=tx.now,
            cause=event.envelope if event else None,
            territory=None if event else territory_from_code(agenda.territory),
            experiment_id=experiment_of(agenda, fact),
            event_id=fact.event_id,
        )
        log.info(fact.spec.name.split(".")[2].replace("-", "."), event_id=fact.event_id)
    tx.on_commit.extend(count(agenda, result))


async def change_agenda(event: Event, tx: Tx, *, settings: AccessSettings) -> None:
    message, now = event.message, tx.now
    agenda = Agenda(message.territory, in_transaction(tx))
    if event.topic == PRACTITIONER_REGISTERED.name:
        result = scheduling.register_practitioner(agenda, message, now, event.envelope.event_id)
    elif event.topic == PLACE_REGISTERED.name:
        result = scheduling.register_place(agenda, message, event.envelope.event_id)
    elif event.topic == AVAILABILITY_PUBLISHED.name:
        result = scheduling.publish_availability(agenda, message, now, event.envelope.event_id)
    elif event.topic == CONSULTATION_REQUESTED.name:
        result = scheduling.request_consultation(
            agenda, message, now, experiment=event.envelope.experiment_id
        )
    else:
        result = scheduling.apply_action(
            agenda, message, now, delays=settings.booking_delays, coordinators=settings.coordinators
        )
    log.info("agenda.changed", topic=event.topic, outcome=result.outcome)
    publish(tx, agenda, result, event)
    gauges_soon(tx, agenda.territory)


def delay_ends_at(
    key: str, lookup: Lookup, now: datetime, *, delays: dict[int, timedelta]
) -> datetime | None:
    """When a request waiting and not flagged yet must be flagged: its booking deadline."""
    stored = lookup(REQUESTS)
    if not stored or stored.get("status") != WAITING or stored.get("flagged_at"):
        return None
    return booking_deadline(RequestState.model_validate(stored), delays) + ROUNDING


async def flag_overdue(key: str, tx: Tx, *, settings: AccessSettings) -> None:
    """Flag a request whose booking delay ran out, as the DELAY_DUE action of its id."""
    territory, request_id = territory_of(key), key.split("|", 1)[1]
    agenda = Agenda(territory, in_transaction(tx))
    result = scheduling.apply_action(
        agenda,
        scheduling.delay_due(territory, request_id, tx.now),
        tx.now,
        delays=settings.booking_delays,
        coordinators=settings.coordinators,
    )
    log.info("request.delay_due", outcome=result.outcome)
    publish(tx, agenda, result, None)
    gauges_soon(tx, territory)


def gauges_soon(tx: Tx, territory: str) -> None:
    """Have the territory's gauges set shortly, unless they already are to be."""
    if tx.get(GAUGES, territory) is None:
        tx.put(GAUGES, territory, {"at": (tx.now + GAUGES_AFTER).isoformat()})


def gauges_at(territory: str, lookup: Lookup, now: datetime) -> datetime | None:
    pending = lookup(GAUGES)
    return datetime.fromisoformat(pending["at"]) if pending else None


async def set_agenda_gauges(territory: str, tx: Tx, *, settings: AccessSettings) -> None:
    """The territory's gauges counted again, as its agenda stands now (applied once the
    transaction commits)."""
    counted = figures.of_agenda(
        Agenda(territory, in_transaction(tx)), tx.now, settings.booking_delays
    )
    tx.on_commit.append(partial(HELD.recounted, tx.partition, counted))
    tx.delete(GAUGES, territory)


def count_partition(
    partition: int, scan: Scan, *, delays: dict[int, timedelta], clock: Callable[[], datetime]
) -> None:
    """A partition opened here: its agendas' gauges counted from its stored state, now."""
    HELD.opened(partition, figures.of_partition(scan, clock(), delays))


def utc_now() -> datetime:
    return datetime.now(UTC)


def processor(
    settings: AccessSettings,
    care_summary: CareSummaryLookup,
    clock: Callable[[], datetime] = utc_now,
) -> Processor:
    """The access service's inputs, tables and timers, given its settings, its way to ask
    the chronic service for a patient's latest values and the time a partition opened
    here is counted at (its slots not started yet, its requests past their delay)."""
    on_agenda = partial(change_agenda, settings=settings)
    return Processor(
        service="access",
        inputs={
            ALERT_RAISED: partial(request_for_alert, care_summary=care_summary),
            INCIDENT_RAISED: request_for_incident,
            INCIDENT_RESOLVED: request_for_incident,
            **dict.fromkeys(AGENDA_INPUTS, on_agenda),
        },
        tables=TABLES,
        timers=(
            Timer(
                "booking-delays",
                (REQUESTS,),
                partial(delay_ends_at, delays=settings.booking_delays),
                partial(flag_overdue, settings=settings),
            ),
            Timer(
                "agenda-gauges",
                (GAUGES,),
                gauges_at,
                partial(set_agenda_gauges, settings=settings),
            ),
        ),
        partition_hooks=(
            PartitionHook(
                "gauges",
                partial(count_partition, delays=settings.booking_delays, clock=clock),
                HELD.closed,
            ),
        ),
    )
