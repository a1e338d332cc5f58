"""One transaction of a partition task: the state it changes and the records it writes.

Handlers read through it (this batch's writes first, then the committed store) and write
to it; nothing reaches Kafka or the store until the kernel commits the whole batch. A
handler that fails is rolled back to where it started, so only its dead letter remains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import partial
from typing import Any, Unpack

from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.kernel.outputs import (
    EventFields,
    Origin,
    OutRecord,
    SetAside,
    checked_size,
    dead_letter_record,
    event_record,
)
from emeuse.registry import TopicSpec

DELETED: Any = object()
_MISSING: Any = object()
CURRENT: ContextVar[Tx | None] = ContextVar("emeuse_kernel_tx", default=None)


def current_tx() -> Tx | None:
    """The transaction of the handler running now, if any (None on the gRPC side)."""
    return CURRENT.get()


class Tx:
    def __init__(
        self,
        partition: int,
        origin: Origin,
        dead_letters: TopicSpec,
        read: Callable[[str, str], Any],
        partition_of: Callable[[str, str], int],
        scan: Callable[[str], Iterable[tuple[str, Any]]] = lambda table: (),
    ) -> None:
        self.partition = partition
        self.origin = origin
        self.dead_letters = dead_letters
        self._read = read
        self._partition_of = partition_of
        self._scan = scan
        self.outputs: list[OutRecord] = []
        self.writes: dict[tuple[str, str], Any] = {}
        self._journal: list[tuple[tuple[str, str], Any]] = []
        # Metrics of what the batch did: applied once it commits, so a batch handled again
        # after an abort is not counted twice.
        self.on_commit: list[Callable[[], None]] = []
        # Counters are summed and incremented once each: a count per record is most of them.
        self._counts: list[tuple[Any, float]] = []
        self.now = datetime.now(UTC)

    def get(self, table: str, key: str) -> Any:
        value = self.writes.get((table, key), _MISSING)
        if value is _MISSING:
            return self._read(table, key)
        return None if value is DELETED else value

    def items(self, table: str) -> list[tuple[str, Any]]:
        """Every entry of `table` in this partition, by key: the committed ones with this
        transaction's writes over them (a handler that lists sees what it just wrote)."""
        found = dict(self._scan(table))
        for (name, key), value in self.writes.items():
            if name != table:
                continue
            if value is DELETED:
                found.pop(key, None)
            else:
                found[key] = value
        return sorted(found.items(), key=lambda item: item[0])

    def put(self, table: str, key: str, value: Any) -> None:
        if value is None:
            raise ValueError(f"{table}: store a value, or delete the key")
        self._write(table, key, value)

    def delete(self, table: str, key: str) -> None:
        self._write(table, key, DELETED)

    def _write(self, table: str, key: str, value: Any) -> None:
        owner = self._partition_of(table, key)
        if owner != self.partition:
            raise ValueError(
                f"{table}: key of partition {owner} written while handling partition "
                f"{self.partition}; a table's keys must follow its inputs' partitioning"
            )
        self._journal.append(((table, key), self.writes.get((table, key), _MISSING)))
        self.writes[(table, key)] = value

    def publish(
        self,
        spec: TopicSpec,
        message: Message,
        **fields: Unpack[EventFields],
    ) -> EventEnvelope:
        """Add an event to the transaction; it is seen by readers only once committed."""
        record, envelope = event_record(self.origin, spec, message, **fields)
        self.outputs.append(checked_size(record))
        return envelope

    def send(self, record: OutRecord) -> None:
        """Add a record as it is (an event passed on to a partner, say)."""
        self.outputs.append(checked_size(record))

    def dead_letter(self, aside: SetAside, topic: str | None = None) -> None:
        self.outputs.append(dead_letter_record(self.origin, self.dead_letters, aside, topic=topic))

    def count(self, metric: Any, amount: float = 1.0) -> None:
        """Increment a Prometheus counter (a child, labels given) once the batch commits."""
        self._counts.append((metric, amount))

    def observe(self, metric: Any, value: float) -> None:
        """Observe a value in a histogram (a child) once the batch commits."""
        self.on_commit.append(lambda: metric.observe(value))

    def savepoint(self) -> tuple[int, int, int, int]:
        return len(self.outputs), len(self._journal), len(self.on_commit), len(self._counts)

    def rollback(self, mark: tuple[int, int, int, int]) -> None:
        """Undo what was written since `mark` (a handler that failed half-way)."""
        outputs, journal, applied, counted = mark
        del self.outputs[outputs:]
        del self.on_commit[applied:]
        del self._counts[counted:]
        while len(self._journal) > journal:
            name, previous = self._journal.pop()
            if previous is _MISSING:
                self.writes.pop(name, None)
            else:
                self.writes[name] = previous

    def committed(self) -> list[Callable[[], None]]:
        """What to apply now that the batch committed: each counter's sum, then the rest."""
        sums: dict[int, tuple[Any, float]] = {}
        for metric, amount in self._counts:
            held = sums.get(id(metric))
            sums[id(metric)] = (metric, amount + (held[1] if held else 0.0))
        return [
            *(partial(metric.inc, total) for metric, total in sums.values()),
            *self.on_commit,
        ]

    @property
    def empty(self) -> bool:
        return not (self.outputs or self.writes)
