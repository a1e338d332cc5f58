"""Table values parsed once per change, not once per read.

A faust memory table hands back the very object last stored under a key, so the same
object means the same value: its parsed form can be reused. The services' timers read
every key they hold each second, and agents read a key's state before each event; with
large states, parsing dominated both (`make bench`).

Parsed values are shared: callers must not change them. The services' handlers already
work on a copy (`changed()`) and return the new state, which the agent stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ParsedValues(Generic[T]):
    def __init__(self, parse: Callable[[Any], T]) -> None:
        self._parse = parse
        self._entries: dict[str, tuple[object, T]] = {}

    def get(self, key: str, stored: Any) -> T:
        """`parse(stored)`, from the last parse when `stored` is the object parsed then."""
        if not stored:  # absent: the tables' default is a new empty dict on every read
            self._entries.pop(key, None)
            return self._parse(stored)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is stored:
            return entry[1]
        parsed = self._parse(stored)
        self._entries[key] = (stored, parsed)
        return parsed

    def remember(self, key: str, stored: object, parsed: T) -> None:
        """`parsed` is what `stored` parses to (a writer that has both): no parse next read."""
        self._entries[key] = (stored, parsed)

    def retain(self, keys: Iterable[str]) -> None:
        """Forget every key but these (the keys a timer round found held): a partition
        that moved to another instance takes its parsed states out of this one's memory."""
        kept = set(keys)
        for key in [k for k in self._entries if k not in kept]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
