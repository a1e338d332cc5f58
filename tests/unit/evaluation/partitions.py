"""The evaluation's handler over real kernel transactions, on six partitions (no broker)."""

from __future__ import annotations

import asyncio
from typing import Any

from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import DELETED, Tx
from emeuse.registry import PARTITIONS, dead_letter_topic
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.events import Event
from services.evaluation.processing import PROCESSOR, fold
from tests.unit.evaluation.scenario import Sent, envelope_of


def partition_of(table: str, key: str) -> int:
    return expected_partition(PROCESSOR.table(table).partition_key(key).encode(), PARTITIONS)


class Partitions:
    """Committed state of every partition; each event handled in its key's partition."""

    def __init__(self) -> None:
        self.committed: dict[int, dict[str, dict[str, Any]]] = {
            p: {table.name: {} for table in PROCESSOR.tables} for p in range(PARTITIONS)
        }

    def handle(self, sent: Sent) -> None:
        # Where the bus puts it: by its key, or the field its topic is partitioned by.
        hashed = sent.spec.partition_key(sent.key.encode(), sent.message) or b""
        partition = expected_partition(hashed, PARTITIONS)
        state = self.committed[partition]
        tx = Tx(
            partition,
            Origin("evaluation", "emeuse/evaluation", "tests"),
            dead_letter_topic("evaluation"),
            lambda table, key: state[table].get(key),
            partition_of,
            lambda table: state[table].items(),
        )
        envelope = envelope_of(sent)
        asyncio.run(fold(Event(envelope, sent.message, sent.key, sent.spec.name, partition, 0), tx))
        for (table, key), value in tx.writes.items():
            if value is DELETED:
                state[table].pop(key, None)
            else:
                state[table][key] = value

    def cells(self, partitions: range | list[int] = range(PARTITIONS)) -> list[tuple[str, Any]]:
        return [
            item for p in partitions for item in self.committed[p]["partition_month_cells"].items()
        ]


class CellsHeld:
    """The cells table as one instance sees it: the partitions it holds."""

    def __init__(self, state: Partitions, held: list[int]) -> None:
        self.state = state
        self.held = held

    def items(self) -> list[tuple[str, Any]]:
        return self.state.cells(self.held)
