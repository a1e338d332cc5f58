"""Each person's calls one after another, people side by side: a person's app waits for
the answer to one call before it makes the next (an aide checks out once her check-in is
taken; the home service refuses a check-out of a visit it has not seen checked in)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

Call = TypeVar("Call")


class Turns(Generic[Call]):
    """Thread-safe: calls are answered on gRPC's threads."""

    def __init__(self) -> None:
        self._waiting: dict[str, deque[Call]] = {}  # person with a call in flight -> next
        self._lock = threading.Lock()

    def take(self, person: str, call: Call) -> bool:
        """Whether `call` may go now; if not, it waits for the person's call in flight and
        comes back from `answered`. A call for no one ("") always goes."""
        if not person:
            return True
        with self._lock:
            waiting = self._waiting.get(person)
            if waiting is not None:
                waiting.append(call)
                return False
            self._waiting[person] = deque()
            return True

    def answered(self, person: str) -> Call | None:
        """The person's call in flight was answered: their next call, now in flight, or
        None when none waits."""
        if not person:
            return None
        with self._lock:
            waiting = self._waiting.get(person)
            if waiting:
                return waiting.popleft()
            self._waiting.pop(person, None)
            return None
