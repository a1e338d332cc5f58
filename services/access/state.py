"""The access service's tables: each territory's agenda, keyed "<territory>|<id>".

Every write comes from a record of the territory (or a timer of one of its keys), so the
kernel places each key by its territory alone, hashed as the agenda's inputs are
("agenda-<territory>"): the tables are co-partitioned with them though their keys carry
an id after the territory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emeuse.kernel.declare import JsonCodec, SharedJsonCodec, TableSpec
from emeuse.kernel.tx import Tx
from emeuse.registry import AGENDA_PARTITION
from services.access.scheduling import AgendaTables, Rows

PRACTITIONERS = "access_practitioners"
SLOTS = "access_slots"
REQUESTS = "access_requests"
BOOKINGS = "access_bookings"
ACTIONS = "access_actions"
PLACES = "access_places"
INDEXES = "access_indexes"
# AgendaTables field -> table name.
NAMES = {
    "practitioners": PRACTITIONERS,
    "slots": SLOTS,
    "requests": REQUESTS,
    "bookings": BOOKINGS,
    "actions": ACTIONS,
    "places": PLACES,
    "indexes": INDEXES,
}


# Keyed by territory alone: when the territory's agenda gauges are next set (metrics).
GAUGES = "access_gauges"


def territory_of(key: str) -> str:
    return key.split("|", 1)[0]


def agenda_partition(key: str) -> str:
    """What picks a key's partition: its territory, hashed as the agenda's inputs hash it
    (emeuse.registry.AGENDA_PARTITION)."""
    return AGENDA_PARTITION.format(territory_of(key))


# The indexes hold a territory's whole line of a need (tens of thousands of requests in a
# busy one): read on every request and every flag, decoded once and shared (indexes.py never
# changes one in place). Decoding one per flag held flags back minutes in make chaos --full.
CODECS = {INDEXES: SharedJsonCodec()}
TABLES = tuple(
    TableSpec(name, help, codec=CODECS.get(name, JsonCodec()), partition_key=agenda_partition)
    for name, help in (
        (PRACTITIONERS, "Directory (domain.agenda.Practitioner)."),
        (SLOTS, "Published slots and their booking (SlotState)."),
        (REQUESTS, "Requests and their status (RequestState)."),
        (BOOKINGS, "Bookings and their lifecycle (BookingState)."),
        (ACTIONS, "Outcome of each booking action, for callers."),
        (PLACES, "Directory of places (domain.agenda.Location)."),
        (INDEXES, "Free slots and the line per need, slots per practitioner (indexes)."),
        (GAUGES, "When the territory's agenda gauges are next set, if a change awaits."),
    )
)


class TxTable:
    """A table of the running transaction, as the agenda reads and writes it."""

    def __init__(self, tx: Tx, name: str) -> None:
        self.tx = tx
        self.name = name

    def get(self, key: str, /) -> Any:
        return self.tx.get(self.name, key)

    def __setitem__(self, key: str, value: Any, /) -> None:
        self.tx.put(self.name, key, value)

    def items(self) -> list[tuple[str, Any]]:
        return self.tx.items(self.name)


def agenda_tables(table: Callable[[str], Rows]) -> AgendaTables:
    return AgendaTables(**{field: table(name) for field, name in NAMES.items()})


def in_transaction(tx: Tx) -> AgendaTables:
    """The tables as a handler sees them: this transaction's writes over the committed
    state of its partition."""
    return agenda_tables(lambda name: TxTable(tx, name))
