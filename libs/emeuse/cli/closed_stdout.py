"""`emeuse tail ... | head`: when the reader of stdout goes away, the command ends quietly
with status 0, as `git log | head` does, whichever command was printing.

Python reports a closed pipe as BrokenPipeError, an OSError: the commands' own handlers
(`kafka_errors`, file errors) would report it as a failure of Kafka or of a file, and rich
exits with status 1. So stdout is watched in one place, `main`, and a closed reader is
raised as StdoutClosed, which no `except Exception` or `except OSError` catches.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast


class StdoutClosed(BaseException):
    """The reader of stdout went away: nothing is left to say, and nobody to say it to.
    Like SystemExit, a way to end rather than an error."""


class _WatchedStdout:
    """stdout as the commands see it: the same stream, with a closed reader said once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise self._closed() from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise self._closed() from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _closed(self) -> StdoutClosed:
        # What is still buffered (and any thread's later line) goes nowhere, rather than
        # failing again when the interpreter flushes stdout at exit ("Exception ignored").
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)
        return StdoutClosed()


@contextmanager
def watched() -> Iterator[None]:
    """Inside: a write to a closed stdout raises StdoutClosed. On the way out stdout is
    flushed, so that a closed reader is found here and not at the interpreter's exit."""
    stream = sys.stdout
    watcher = _WatchedStdout(stream)
    sys.stdout = cast(TextIO, watcher)
    try:
        yield
    finally:
        try:
            watcher.flush()
        except StdoutClosed:
            pass  # found only now: the command has ended, and its own status stands
        finally:
            sys.stdout = stream
