"""The coordination's handlers over real kernel transactions, on six partitions (no broker).

What a handler publishes on the timeline-entry topic is handled in turn on the partition
it was sent to, as the broker and the kernel would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.message import Message

from emeuse.coordination.v1.coordination_events_pb2 import TimelineEntryRecorded
from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import DELETED, Tx
from emeuse.registry import PARTITIONS, TIMELINE_ENTRY_RECORDED, TopicSpec, dead_letter_topic
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.events import Event
from services.coordination.processing import PROCESSOR


def partition_of(table: str, key: str) -> int:
    return expected_partition(PROCESSOR.table(table).partition_key(key).encode(), PARTITIONS)


@dataclass
class Handled:
    """Where each input was handled and which tables' keys it wrote."""

    topic: str
    partition: int
    written: list[tuple[str, str]]


class Partitions:
    """Committed state of every partition; each event handled in its key's partition."""

    def __init__(self) -> None:
        self.committed: dict[int, dict[str, dict[str, Any]]] = {
            p: {table.name: {} for table in PROCESSOR.tables} for p in range(PARTITIONS)
        }
        self.handled: list[Handled] = []

    def send(
        self,
        spec: TopicSpec,
        message: Message,
        when: datetime,
        territory: str = "55",
        event_id: str | None = None,
        source: str = "",
    ) -> str:
        """Handle the event; `source` is its publisher (the topic's owning service when
        empty, "partner/<id>" for a partner's event the gateway admitted)."""
        subject = getattr(message, spec.subject_field)
        envelope = env.new_envelope(
            event_type=spec.type_name,
            source=source or f"emeuse/{spec.owner}",
            subject_pseudonym=subject,
            territory=env.territory_from_code(territory),
            experiment_id="exp-tests",
            schema_version=spec.schema_version,
            occurred_at=when,
            event_id=event_id,
        )
        key = spec.record_key(message) or ""
        hashed = spec.partition_key(key.encode(), message)
        assert hashed is not None
        self.handle(spec, message, envelope, expected_partition(hashed, PARTITIONS))
        return envelope.event_id

    def handle(self, spec: TopicSpec, message: Message, envelope: Any, partition: int) -> None:
        state = self.committed[partition]
        tx = Tx(
            partition,
            Origin("coordination", "emeuse/coordination", "tests"),
            dead_letter_topic("coordination"),
            lambda table, key: state[table].get(key),
            partition_of,
            lambda table: state[table].items(),
        )
        event = Event(envelope, message, None, spec.name, partition, 0)
        asyncio.run(PROCESSOR.inputs[spec](event, tx))
        for (table, key), value in tx.writes.items():
            if value is DELETED:
                state[table].pop(key, None)
            else:
                state[table][key] = value
        for apply in tx.committed():  # its metrics, as the kernel applies them on commit
            apply()
        self.handled.append(Handled(spec.name, partition, list(tx.writes)))
        for out in tx.outputs:
            assert out.topic == TIMELINE_ENTRY_RECORDED.name
            target = expected_partition(out.key or b"", PARTITIONS)
            self.handle(
                TIMELINE_ENTRY_RECORDED,
                TimelineEntryRecorded.FromString(out.value),
                env.from_headers(env.header_map(out.headers)),
                target,
            )

    def fire(self, key: str, now: datetime) -> datetime | None:
        """Run the problems' timer for `key` at `now`, as the kernel does at its deadline;
        the key's next deadline after it."""
        [timer] = PROCESSOR.timers
        table = "territory_people_with_problems"
        partition = partition_of(table, key)
        state = self.committed[partition]
        tx = Tx(
            partition,
            Origin("coordination", "emeuse/coordination", "tests"),
            dead_letter_topic("coordination"),
            lambda table, key: state[table].get(key),
            partition_of,
            lambda table: state[table].items(),
        )
        tx.now = now
        asyncio.run(timer.fire(key, tx))
        for (name, written), value in tx.writes.items():
            if value is DELETED:
                state[name].pop(written, None)
            else:
                state[name][written] = value
        for apply in tx.committed():
            apply()
        return timer.due(key, lambda name: state[name].get(key), now)

    def deadline(self, key: str) -> datetime | None:
        [timer] = PROCESSOR.timers
        state = self.committed[partition_of("territory_people_with_problems", key)]
        return timer.due(key, lambda name: state[name].get(key), datetime.now())

    def timeline(self, person: str) -> Any:
        return self.committed[partition_of("person_timeline", person)]["person_timeline"].get(
            person
        )

    def open_here(self, partitions: range = range(PARTITIONS)) -> None:
        """Tell the partition hooks these partitions are opened, with their stored state."""
        for p in partitions:
            state = self.committed[p]
            for hook in PROCESSOR.partition_hooks:
                hook.opened(p, lambda table, state=state: state[table].items())

    def close_here(self, partitions: range = range(PARTITIONS)) -> None:
        for p in partitions:
            for hook in PROCESSOR.partition_hooks:
                hook.closed(p)

    def with_problems(self) -> list[tuple[str, Any]]:
        return [
            item
            for p in range(PARTITIONS)
            for item in self.committed[p]["territory_people_with_problems"].items()
        ]
