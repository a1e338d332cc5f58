"""Care teams, home contacts and practitioners answering what the platform raises and
books, as their tools would; and delivery partners reporting on the messages prevention
hands them (delivery.py).

Each alert or incident of a simulated person is acknowledged by whoever it names, after a
delay drawn between a tenth and nine tenths of the time they have, or never (a share of
them), so escalations happen. Each consultation booked for a simulated patient gets its
outcome from the practitioner, completed or, for `no_show_rate` of them, a no-show (the
patient missed it), as soon as the access service accepts one: from 15 minutes before the
slot's start, a wall-clock rule no simulation can hurry. The draws are seeded by the
alert's or booking's id: the same one gets the same answer. Which alerts the platform
raises and which slots it books, and when, is its own doing, so what this sends is not
part of the events a seed fixes.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from emeuse.cli.records import describe
from emeuse.registry import (
    ALERT_RAISED,
    INCIDENT_RAISED,
    MESSAGE_DELIVERY_REQUESTED,
    SLOT_BOOKED,
)
from emeuse.runtime.kafka_clients import client_options
from emeuse.runtime.security import PLAINTEXT, KafkaLogin
from emeuse.runtime.unreadable import poll
from emeuse.simulate.delivery import acted_on, receipt
from emeuse.simulate.events import GRPC, Options, SimEvent
from emeuse.simulate.send import Tally, Transport

ANSWERED_LATE = ("FAILED_PRECONDITION",)  # resolved or taken by someone else meanwhile
# The access service takes an outcome from this long before the slot's start (and no sooner).
OUTCOME_TOLERANCE = timedelta(minutes=15)
OUTCOME_MARGIN_S = 5.0  # after that moment, so clocks a little apart still agree


def answer_delay(seed: int, alert_id: str, options: Options) -> float | None:
    """Seconds before the alert is acknowledged, or None when nobody ever does."""
    rng = random.Random(f"emeuse-simulate-answer-{seed}-{alert_id}")
    if rng.random() >= options.acknowledged_share:
        return None
    return rng.uniform(0.1, 0.9) * options.acknowledge_within_s


def consultation_outcome(
    seed: int, booked: dict[str, Any], now: datetime, options: Options
) -> tuple[float, SimEvent]:
    """Seconds from now until the practitioner records the booked consultation's outcome,
    and the call: completed, or a no-show for `no_show_rate` of the bookings."""
    rng = random.Random(f"emeuse-simulate-outcome-{seed}-{booked['booking_id']}")
    no_show = rng.random() < options.no_show_rate
    start = datetime.fromisoformat(booked["start"].replace("Z", "+00:00"))
    accepted_in = (start - OUTCOME_TOLERANCE - now).total_seconds() + OUTCOME_MARGIN_S
    delay = max(accepted_in, rng.uniform(1, 5))
    status = "NO_SHOW" if no_show else "COMPLETED"
    message = {
        "territory": booked["territory"],
        "booking_id": booked["booking_id"],
        "status": f"CONSULTATION_STATUS_{status}",
        "actor_id": booked["practitioner_id"],
    }
    call = SimEvent(
        f"care_team.consultation_{status.lower()}",
        GRPC,
        "access/RecordConsultationOutcome",
        booked["territory"],
        booked["patient_pseudonym"],
        now,
        booked["booking_id"],
        message,
    )
    return delay, call


def acknowledgement(record: dict[str, Any], now: datetime) -> SimEvent:
    """The call that acknowledges a raised alert or incident, shown as `emeuse tail` shows it."""
    event, territory = record["event"], record["headers"].get("ce_territory", "55")
    if record["topic"] == ALERT_RAISED.name:
        message = {
            "patient_pseudonym": event["patient_pseudonym"],
            "alert_id": event["alert_id"],
            "member_id": event.get("notified", {}).get("member_id", ""),
        }
        return SimEvent(
            "care_team.alert_acknowledged",
            GRPC,
            "chronic/AcknowledgeAlert",
            territory,
            event["patient_pseudonym"],
            now,
            event["alert_id"],
            message,
        )
    message = {
        "resident_pseudonym": event["resident_pseudonym"],
        "incident_id": event["incident_id"],
        "contact_id": event.get("notified", {}).get("contact_id", ""),
    }
    return SimEvent(
        "care_team.incident_acknowledged",
        GRPC,
        "home/AcknowledgeIncident",
        territory,
        event["resident_pseudonym"],
        now,
        event["incident_id"],
        message,
    )


class CareTeams:
    """A thread reading raised alerts and incidents, bookings and messages to deliver,
    answering them when their time comes."""

    def __init__(
        self,
        bootstrap: str,
        options: Options,
        people: set[str],
        transport: Transport,
        tally: Tally,
        login: KafkaLogin = PLAINTEXT,
    ) -> None:
        self.options, self.people, self.transport, self.tally = options, people, transport, tally
        self.bootstrap = bootstrap.split(",")
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            client_id="emeuse-simulate-care-teams",
            **client_options(login),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        partitions = [
            TopicPartition(spec.name, p)
            for spec in (ALERT_RAISED, INCIDENT_RAISED, SLOT_BOOKED, MESSAGE_DELIVERY_REQUESTED)
            for p in sorted(self.consumer.partitions_for_topic(spec.name) or ())
        ]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            self.consumer.position(partition)  # fixes "the end" now, before anything is sent
        self.due: list[tuple[float, int, SimEvent]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._answer, name="care-teams", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.consumer.close()
        # Answers not due yet when the run ends (a slot hours ahead): counted, not sent.
        for _, _, call in self.due:
            self.tally.count(f"{call.kind}.after_the_end")

    def _answer(self) -> None:
        serial = 0
        while not self.stopping.is_set():
            polled, unreadable = poll(self.consumer, self.bootstrap, timeout_ms=200)
            for _ in unreadable:  # no alert anyone can answer: counted, and passed
                self.tally.count("care_team.unreadable_record")
            for records in polled.values():
                for r in records:
                    shown = describe(r.topic, r.partition, r.offset, r.key, r.value, r.headers)
                    event = shown.get("event", {})
                    subject = (
                        event.get("patient_pseudonym")
                        or event.get("resident_pseudonym")
                        or event.get("person_pseudonym")
                    )
                    if subject not in self.people:
                        continue
                    now = datetime.now(UTC)
                    if r.topic == MESSAGE_DELIVERY_REQUESTED.name:
                        reported = receipt(self.options.seed, shown, now, self.options)
                        if reported is None:
                            self.tally.count("delivery.no_receipt")
                            continue
                        delay, call = reported
                        action = acted_on(self.options.seed, shown, call, self.options)
                        if action is not None:
                            serial += 1
                            due = time.monotonic() + delay + action[0]
                            heapq.heappush(self.due, (due, serial, action[1]))
                    elif r.topic == SLOT_BOOKED.name:
                        delay, call = consultation_outcome(
                            self.options.seed, event, now, self.options
                        )
                    else:
                        call = acknowledgement(shown, now)
                        answer = answer_delay(self.options.seed, call.event_id, self.options)
                        if answer is None:
                            self.tally.count("care_team.never_answered")
                            continue
                        delay = answer
                    serial += 1
                    heapq.heappush(self.due, (time.monotonic() + delay, serial, call))
            while self.due and self.due[0][0] <= time.monotonic():
                _, _, call = heapq.heappop(self.due)
                self.tally.started()
                self.transport.send(call, self._done)

    def _done(self, kind: str, error: str | None) -> None:
        answered_late = error is not None and any(code in error for code in ANSWERED_LATE)
        if answered_late and "acknowledged" in kind:
            self.tally.done(kind.replace("acknowledged", "answered_too_late"), None)
        else:
            self.tally.done(kind, error)
