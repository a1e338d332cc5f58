"""A partition's state on disk: RocksDB (rocksdict), one database per partition.

The changelog topic is the truth and this store a cache of it: the store changes only after
the transaction that wrote the same changes to the changelog has committed, together with
the changelog offset it now reflects (the checkpoint), so recovery reads only the tail.
Each table's due-index (the next deadline of each key with a timer) is kept beside the
values, so a restart rebuilds its timers without decoding every value.

The next input offset of each input topic of the partition travels the same way, as the
entries of a table of the kernel's own (INPUT_OFFSETS, key: the topic): written in the
transaction that handled the inputs, so the changelog says where to read on.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

_VALUE, _DUE, _CHECKPOINT = b"v", b"d", b"c"
_SEP = b"\x00"
_I64 = struct.Struct(">q")
# The kernel's table of next input offsets; services' table names cannot start with "__".
INPUT_OFFSETS = "__input_offsets"


def encode_offset(offset: int) -> bytes:
    return _I64.pack(offset)


def changelog_key(table: str, key: str) -> bytes:
    """The changelog record key of a table entry: `<table>\\0<key>`."""
    return table.encode() + _SEP + key.encode()


def split_changelog_key(raw: bytes) -> tuple[str, str]:
    table, _, key = raw.partition(_SEP)
    return table.decode(), key.decode()


class PartitionStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        self._db = Rdict(str(path), options)

    @classmethod
    def destroy(cls, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def get(self, table: str, key: str) -> bytes | None:
        value = self._db.get(_VALUE + changelog_key(table, key))
        return None if value is None else bytes(value)

    def items(self, table: str) -> Iterator[tuple[str, bytes]]:
        prefix = _VALUE + table.encode() + _SEP
        yield from ((key, value) for key, value in self._scan(prefix))

    def due_items(self, table: str) -> Iterator[tuple[str, int]]:
        """(key, deadline in ms since the epoch) of every key of `table` with a timer."""
        prefix = _DUE + table.encode() + _SEP
        for key, value in self._scan(prefix):
            yield key, _I64.unpack(value)[0]

    def _scan(self, prefix: bytes) -> Iterator[tuple[str, bytes]]:
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            raw = bytes(it.key())
            if not raw.startswith(prefix):
                break
            yield raw[len(prefix) :].decode(), bytes(it.value())
            it.next()

    def input_offset(self, topic: str) -> int | None:
        """The next offset of `topic` (this partition) to handle, as last committed."""
        raw = self.get(INPUT_OFFSETS, topic)
        return None if raw is None else _I64.unpack(raw)[0]

    def checkpoint(self) -> int | None:
        """The changelog offset up to which (excluded) this store reflects the changelog."""
        raw = self._db.get(_CHECKPOINT)
        return None if raw is None else _I64.unpack(bytes(raw))[0]

    def apply(
        self,
        values: Iterable[tuple[str, str, bytes | None]],
        due: Iterable[tuple[str, str, int | None]] = (),
        checkpoint: int | None = None,
    ) -> None:
        """Write changes atomically: (table, key, value or None to delete), due-index entries
        (table, key, deadline ms or None), and the new checkpoint."""
        batch = WriteBatch(raw_mode=True)
        for table, key, value in values:
            name = _VALUE + changelog_key(table, key)
            if value is None:
                batch.delete(name)
            else:
                batch.put(name, value)
        for table, key, deadline in due:
            name = _DUE + changelog_key(table, key)
            if deadline is None:
                batch.delete(name)
            else:
                batch.put(name, _I64.pack(deadline))
        if checkpoint is not None:
            batch.put(_CHECKPOINT, _I64.pack(checkpoint))
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()
