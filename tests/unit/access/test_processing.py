"""The access handlers and booking-delay timer over a real kernel transaction (no broker)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from emeuse.access.v1.access_events_pb2 import CareSummaryMeasure
from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, AlertSeverity
from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import DELETED, Tx
from emeuse.registry import (
    ALERT_RAISED,
    AVAILABILITY_PUBLISHED,
    CONSULTATION_REQUESTED,
    PRACTITIONER_REGISTERED,
    REQUEST_FLAGGED,
    SLOT_BOOKED,
    TopicSpec,
    dead_letter_topic,
)
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.envelope import H_ID, territory_from_code
from emeuse.runtime.events import Event
from services.access.config import AccessSettings
from services.access.domain.agenda import WAITING
from services.access.metrics import watch
from services.access.processing import (
    change_agenda,
    delay_ends_at,
    flag_overdue,
    gauges_at,
    processor,
    request_for_alert,
    set_agenda_gauges,
)
from services.access.scheduling import derived_id
from services.access.state import REQUESTS, TABLES
from tests.unit.access.meuse import (
    BAR_LE_DUC,
    COORDINATORS,
    DELAYS,
    IMMEDIATE,
    NOW,
    SPECIALIST,
    at,
    availability,
    consultation,
    patient,
    practitioner,
)

SETTINGS = AccessSettings(
    service=None,  # type: ignore[arg-type]
    chronic_grpc="127.0.0.1:50052",
    booking_delays=DELAYS,
    coordinators=COORDINATORS,
)


async def no_summary(patient_: str) -> None:
    return None


class Clock:
    """The time a partition is opened at, as the test sets it."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


CLOCK = Clock()
PROCESSOR = processor(SETTINGS, no_summary, CLOCK)
ON = {"settings": SETTINGS}


def partition_of(table: str, key: str) -> int:
    return expected_partition(PROCESSOR.table(table).partition_key(key).encode(), 6)


class Partition:
    """The committed state of the Meuse's partition, and its transactions one after another."""

    def __init__(self) -> None:
        self.number = partition_of(REQUESTS, "55")
        self.committed: dict[str, dict[str, Any]] = {table.name: {} for table in TABLES}

    def tx(self, now: datetime = NOW) -> Tx:
        tx = Tx(
            self.number,
            Origin("access", "emeuse/access", "baseline"),
            dead_letter_topic("access"),
            lambda table, key: self.committed[table].get(key),
            partition_of,
            lambda table: self.committed[table].items(),
        )
        tx.now = now
        return tx

    def commit(self, tx: Tx) -> None:
        for (table, key), value in tx.writes.items():
            if value is DELETED:
                self.committed[table].pop(key, None)
            else:
                self.committed[table][key] = value
        for apply in tx.committed():  # its metrics, as the kernel applies them on commit
            apply()

    def open_here(self, now: datetime = NOW) -> None:
        """Tell the partition hooks this partition is opened at `now`, with its committed
        state."""
        CLOCK.now = now
        for hook in PROCESSOR.partition_hooks:
            hook.opened(self.number, lambda table: list(self.committed[table].items()))

    def close_here(self) -> None:
        for hook in PROCESSOR.partition_hooks:
            hook.closed(self.number)

    def lookup(self, key: str):
        return lambda table: self.committed[table].get(key)


def event(
    spec: TopicSpec, message: Any, territory: str = "55", experiment: str = "baseline"
) -> Event:
    envelope = EventEnvelope(
        event_id=f"evt-{id(message)}",
        correlation_id=f"evt-{id(message)}",
        experiment_id=experiment,
        territory=territory_from_code(territory),
    )
    return Event(envelope, message, territory, spec.name, 0, 0)


def published(tx: Tx, spec: TopicSpec) -> list[dict[str, str]]:
    return [
        {k: v.decode() for k, v in out.headers} | {"key": (out.key or b"").decode()}
        for out in tx.outputs
        if out.topic == spec.name
    ]


def run(handler: Any, *args: Any) -> None:
    asyncio.run(handler(*args))


def test_two_requests_in_one_transaction_never_take_the_same_slot():
    meuse = Partition()
    tx = meuse.tx()
    cardio = practitioner("cardio-bld", BAR_LE_DUC, profession=SPECIALIST, specialty="cardio")
    run(lambda: change_agenda(event(PRACTITIONER_REGISTERED, cardio), tx, **ON))
    slots = availability("cardio-bld", at(9))
    run(lambda: change_agenda(event(AVAILABILITY_PUBLISHED, slots), tx, **ON))
    for name in ("first", "second"):
        asked = consultation(name, profession=SPECIALIST, specialty="cardio")
        run(lambda asked=asked: change_agenda(event(CONSULTATION_REQUESTED, asked), tx, **ON))
    (booking,) = published(tx, SLOT_BOOKED)
    assert booking["key"] == "55"
    assert tx.get(REQUESTS, "55|second")["status"] == WAITING


def test_a_request_past_its_delay_is_flagged_by_its_timer_once():
    meuse = Partition()
    tx = meuse.tx()
    asked = consultation("urgent", urgency=IMMEDIATE, requested_at=NOW)
    run(lambda: change_agenda(event(CONSULTATION_REQUESTED, asked), tx, settings=SETTINGS))
    meuse.commit(tx)
    due = delay_ends_at("55|urgent", meuse.lookup("55|urgent"), NOW, delays=DELAYS)
    assert due is not None and due - NOW >= timedelta(minutes=15)

    fired = meuse.tx(now=at(8, 16))
    run(lambda: flag_overdue("55|urgent", fired, settings=SETTINGS))
    (flag,) = published(fired, REQUEST_FLAGGED)
    assert flag[H_ID] == derived_id("urgent", "flagged")
    assert flag["key"] == "55"
    meuse.commit(fired)
    assert delay_ends_at("55|urgent", meuse.lookup("55|urgent"), at(8, 16), delays=DELAYS) is None

    again = meuse.tx(now=at(8, 30))
    run(lambda: flag_overdue("55|urgent", again, settings=SETTINGS))
    assert again.empty


def test_a_requests_booking_and_flag_are_in_the_experiment_it_was_made_in():
    """A booking made when a slot is published, a flag the timer raises: their cause is the
    practitioner's agenda or nothing, yet the evaluation counts them with the request."""
    meuse = Partition()
    tx = meuse.tx()
    cardio = practitioner("cardio-bld", BAR_LE_DUC, profession=SPECIALIST, specialty="cardio")
    run(lambda: change_agenda(event(PRACTITIONER_REGISTERED, cardio), tx, **ON))
    for name in ("booked", "urgent"):
        asked = consultation(
            name, profession=SPECIALIST, specialty="cardio", urgency=IMMEDIATE, requested_at=NOW
        )
        teleconsult = event(CONSULTATION_REQUESTED, asked, experiment="teleconsult-meuse")
        run(lambda teleconsult=teleconsult: change_agenda(teleconsult, tx, **ON))
    slots = availability("cardio-bld", at(8, 5))
    run(lambda: change_agenda(event(AVAILABILITY_PUBLISHED, slots), tx, **ON))
    meuse.commit(tx)
    (booking,) = published(tx, SLOT_BOOKED)
    assert booking["ce_experiment"] == "teleconsult-meuse"

    fired = meuse.tx(now=at(8, 16))
    waiting = next(k for k, v in meuse.committed[REQUESTS].items() if v["status"] == WAITING)
    run(lambda: flag_overdue(waiting, fired, settings=SETTINGS))
    (flag,) = published(fired, REQUEST_FLAGGED)
    assert flag["ce_experiment"] == "teleconsult-meuse"


def test_a_critical_alert_asks_the_territorys_scheduler_and_writes_no_table():
    summary = [CareSummaryMeasure(loinc_code="34714-6", value=5.6, unit="{INR}")]

    async def care_summary(patient_: str) -> list[CareSummaryMeasure]:
        return summary

    alert = AlertRaised(
        alert_id="alert-1",
        patient_pseudonym=patient("inr"),
        severity=AlertSeverity.ALERT_SEVERITY_CRITICAL,
        rule="threshold.critical_high",
        loinc_code="34714-6",
    )
    tx = Partition().tx()
    run(lambda: request_for_alert(event(ALERT_RAISED, alert), tx, care_summary=care_summary))
    (asked,) = published(tx, CONSULTATION_REQUESTED)
    assert asked["key"] == "55"
    assert not tx.writes


def test_the_agenda_gauges_are_set_once_shortly_after_a_burst_of_changes():
    watch(("55",))
    meuse = Partition()
    meuse.open_here()
    tx = meuse.tx()
    for name in ("one", "two"):
        asked = consultation(name, urgency=IMMEDIATE)
        run(lambda asked=asked: change_agenda(event(CONSULTATION_REQUESTED, asked), tx, **ON))
    meuse.commit(tx)
    assert gauges_at("55", meuse.lookup("55"), NOW) == NOW + timedelta(seconds=5)

    fired = meuse.tx(now=at(8, 20))
    run(lambda: set_agenda_gauges("55", fired, **ON))
    meuse.commit(fired)
    assert gauges_at("55", meuse.lookup("55"), at(8, 20)) is None
    waiting = REGISTRY.get_sample_value(
        "emeuse_access_waiting_requests", {"territory": "55", "urgency": "immediate"}
    )
    unmet = REGISTRY.get_sample_value(
        "emeuse_access_unmet_requests", {"territory": "55", "urgency": "immediate"}
    )
    assert (waiting, unmet) == (2, 2)
