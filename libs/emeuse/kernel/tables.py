"""A table as service code sees it: a mapping from key to value.

Inside a handler (a transaction is running) it reads this batch's writes first, then the
committed store (lists too, over the handler's partition), and writes to the transaction.
Anywhere else (gRPC) it reads only what is committed on this instance, so an answer never
shows a change that may still be aborted, and it refuses writes: a change is an event on
an input topic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from emeuse.kernel.tx import current_tx

if TYPE_CHECKING:
    from emeuse.kernel.engine import Kernel


class Table:
    def __init__(self, kernel: Kernel, name: str) -> None:
        if name not in kernel.tables:
            raise KeyError(f"{kernel.service} declares no table {name!r}")
        self.kernel = kernel
        self.name = name

    @property
    def partitions(self) -> int:
        return self.kernel.partitions

    def partition_of(self, key: str) -> int:
        return self.kernel.partition_of(self.name, key)

    def get(self, key: str, default: Any = None) -> Any:
        tx = current_tx()
        value = tx.get(self.name, key) if tx is not None else self.kernel.read(self.name, key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __setitem__(self, key: str, value: Any) -> None:
        self._tx().put(self.name, key, value)

    def __delitem__(self, key: str) -> None:
        self._tx().delete(self.name, key)

    def pop(self, key: str, default: Any = None) -> Any:
        value = self.get(key, default)
        if self.get(key) is not None:
            del self[key]
        return value

    def items(self) -> list[tuple[str, Any]]:
        """Inside a handler: the entries of its partition, this batch's writes included (as
        `get` reads them). Elsewhere: the committed entries held on this instance. By key."""
        tx = current_tx()
        return tx.items(self.name) if tx is not None else self.kernel.items(self.name)

    def keys(self) -> Iterator[str]:
        return (key for key, _ in self.items())

    def values(self) -> Iterator[Any]:
        return (value for _, value in self.items())

    def _tx(self) -> Any:
        tx = current_tx()
        if tx is None:
            raise RuntimeError(
                f"table {self.name} changes only in a handler; publish an event instead"
            )
        return tx
