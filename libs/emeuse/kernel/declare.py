"""What a service declares; the kernel does the rest (decoding, dead letters, state, timers,
transactions, recovery, routing of reads).

A service's `processing.py` builds one `Processor`: the topics it reads with their handler,
the tables of state it keeps per key, its timers, and what it is told when a partition is
opened or let go here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from emeuse.registry import TopicSpec

if TYPE_CHECKING:
    from emeuse.kernel.tx import Tx
    from emeuse.runtime.events import Event

Handler = Callable[["Event", "Tx"], Awaitable[None]]


class ValueCodec(Protocol):
    """How a table's values become bytes on disk and in the changelog, and back."""

    def encode(self, value: Any) -> bytes: ...
    def decode(self, data: bytes) -> Any: ...


class JsonCodec:
    """JSON documents (dicts). Each read decodes a fresh copy, so a handler may change it."""

    shared = False

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


class SharedJsonCodec(JsonCodec):
    """JSON documents that handlers never change in place (they build new ones): decoded
    once and handed to every reader from the task's cache. For a large document read far
    more often than written (an index), where decoding it on each read is most of the cost."""

    shared = True


@dataclass(frozen=True)
class CodecOf:
    """A codec from two functions. `shared=True` says values are never changed in place
    (handlers build new ones), so the kernel may hand every reader the same decoded object."""

    encode_value: Callable[[Any], bytes]
    decode_value: Callable[[bytes], Any]
    shared: bool = True

    def encode(self, value: Any) -> bytes:
        return self.encode_value(value)

    def decode(self, data: bytes) -> Any:
        return self.decode_value(data)


def whole_key(key: str) -> str:
    return key


@dataclass(frozen=True)
class TableSpec:
    """A table of state: one value per key, kept on disk per partition, backed by the
    changelog. `partition_key` gives the part of a key that picks its partition (the whole
    key, or the territory of a "<territory>|<id>" key)."""

    name: str
    help: str
    codec: ValueCodec = field(default_factory=JsonCodec)
    partition_key: Callable[[str], str] = whole_key


# Reads the value a key has in a table (None when absent), for a timer's `due`.
Lookup = Callable[[str], Any]


@dataclass(frozen=True)
class Timer:
    """`due(key, lookup, now)` gives a key's next deadline (or None) from its values in
    `tables`; it is asked again whenever one of them changes. When the deadline comes the
    kernel calls `fire(key, tx)` in a transaction of the key's partition, like an input."""

    name: str
    tables: tuple[str, ...]
    due: Callable[[str, Lookup, datetime], datetime | None]
    fire: Callable[[str, Tx], Awaitable[None]]
    # `due` also reads what no table holds (a directory each instance keeps): the service
    # calls Kernel.retime when that changes, and the kernel recomputes every deadline of a
    # partition it opens, whose stored deadlines may predate a change made while another
    # instance held it.
    outside: bool = False


# Every committed (key, value) of a table in one partition, for a PartitionHook's `opened`.
Scan = Callable[[str], Iterable[tuple[str, Any]]]


@dataclass(frozen=True)
class PartitionHook:
    """What a service keeps per partition held here, outside its tables (gauges of its
    state): `opened(partition, scan)` once the partition's state is recovered, before its
    first batch, with `scan(table)` reading its committed values; `closed(partition)` when
    this instance lets it go (revoked, fenced, stopping), never before `opened` has
    returned. `opened` may read every value of the partition: it runs in a worker thread
    (it must only read through `scan` and hand its result over in one assignment);
    `closed` runs on the event loop. A hook that fails is logged and never stops the
    partition."""

    name: str
    opened: Callable[[int, Scan], None]
    closed: Callable[[int], None]


@dataclass(frozen=True)
class Processor:
    service: str
    inputs: Mapping[TopicSpec, Handler]
    tables: Sequence[TableSpec] = ()
    timers: Sequence[Timer] = ()
    partition_hooks: Sequence[PartitionHook] = ()

    def __post_init__(self) -> None:
        names = [table.name for table in self.tables]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.service}: a table is declared twice")
        if any(name.startswith("__") for name in names):  # the kernel's own (store.py)
            raise ValueError(f"{self.service}: table names starting with '__' are the kernel's")
        partitions = {spec.partitions for spec in self.inputs}
        if len(partitions) > 1:
            raise ValueError(f"{self.service}: inputs are not co-partitioned ({partitions})")
        for timer in self.timers:
            if not timer.tables or set(timer.tables) - set(names):
                raise ValueError(f"{self.service}: timer {timer.name} on undeclared tables")
        if len({timer.name for timer in self.timers}) != len(self.timers):
            raise ValueError(f"{self.service}: a timer is declared twice")
        if len({hook.name for hook in self.partition_hooks}) != len(self.partition_hooks):
            raise ValueError(f"{self.service}: a partition hook is declared twice")

    @property
    def partitions(self) -> int:
        return next(iter(self.inputs)).partitions

    def table(self, name: str) -> TableSpec:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)
