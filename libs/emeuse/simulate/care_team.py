"""Care teams and home contacts answering what the platform raises, as their tools would.

Each alert or incident of a simulated person is acknowledged by whoever it names, after a
delay drawn between a tenth and nine tenths of the time they have, or never (a share of
them), so escalations happen. The draw is seeded by the alert's id: the same alert gets the
same answer. Which alerts the platform raises, and when, is its own doing, so what this
sends is not part of the events a seed fixes.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from emeuse.cli.records import describe
from emeuse.registry import ALERT_RAISED, INCIDENT_RAISED
from emeuse.runtime.kafka_clients import client_options
from emeuse.runtime.security import PLAINTEXT, KafkaLogin
from emeuse.simulate.events import GRPC, Options, SimEvent
from emeuse.simulate.send import Tally, Transport

ANSWERED_LATE = ("FAILED_PRECONDITION",)  # resolved or taken by someone else meanwhile


def answer_delay(seed: int, alert_id: str, options: Options) -> float | None:
    """Seconds before the alert is acknowledged, or None when nobody ever does."""
    rng = random.Random(f"emeuse-simulate-answer-{seed}-{alert_id}")
    if rng.random() >= options.acknowledged_share:
        return None
    return rng.uniform(0.1, 0.9) * options.acknowledge_within_s


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
    """A thread reading raised alerts and incidents, answering them when their time comes."""

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
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            client_id="emeuse-simulate-care-teams",
            **client_options(login),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        partitions = [
            TopicPartition(spec.name, p)
            for spec in (ALERT_RAISED, INCIDENT_RAISED)
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

    def _answer(self) -> None:
        serial = 0
        while not self.stopping.is_set():
            for records in self.consumer.poll(timeout_ms=200).values():
                for r in records:
                    shown = describe(r.topic, r.partition, r.offset, r.key, r.value, r.headers)
                    if shown["key"] not in self.people or "event" not in shown:
                        continue
                    call = acknowledgement(shown, datetime.now(UTC))
                    delay = answer_delay(self.options.seed, call.event_id, self.options)
                    if delay is None:
                        self.tally.count("care_team.never_answered")
                        continue
                    serial += 1
                    heapq.heappush(self.due, (time.monotonic() + delay, serial, call))
            while self.due and self.due[0][0] <= time.monotonic():
                _, _, call = heapq.heappop(self.due)
                self.tally.started()
                self.transport.send(call, self._done)

    def _done(self, kind: str, error: str | None) -> None:
        if error is not None and any(code in error for code in ANSWERED_LATE):
            self.tally.done(kind.replace("acknowledged", "answered_too_late"), None)
        else:
            self.tally.done(kind, error)
