"""The CA bundle the process's Kafka clients check brokers against, followed as it changes,
so a renewed CA (Strimzi's cluster CA, a local CA file that gains the new CA) is trusted
without a restart (docs/security.md, rotating).

One TLS context per CA file and process, shared by every Kafka client (aiokafka and
kafka-python keep the context they were given and open each broker connection from it).
Before a connection's handshake the file is looked at (a stat, at most once a second, as
emeuse.runtime.certificates does for gRPC servers); when it changed and parses, its
certificates are added to the context, so new connections trust the new CA.

An SSLContext cannot forget a CA it was given: the old CA stays trusted by this process
until it restarts (or until the old CA certificate itself expires, which fails the check
anyway). That is what a renewal needs, since brokers move to certificates of the new CA one
at a time and both must verify during the overlap; it is not a way to stop trusting a CA
that leaked: restart the services for that.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from emeuse.runtime.certificates import SERVER_RECHECK_S, Stamp, file_stamp

log = structlog.get_logger("emeuse.kafka")


class FollowedCaContext(ssl.SSLContext):
    """A client context checking the peer and its name against `ca_file`, as
    `ssl.create_default_context(cafile=...)` does, that adds the file's certificates again
    before a new connection once the file has changed. Thread-safe."""

    ca_file: Path

    def __new__(cls, ca_file: Path, **_: Any) -> FollowedCaContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(
        self,
        ca_file: Path,
        recheck_s: float = SERVER_RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ca_file = ca_file
        self._recheck_s = recheck_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: Stamp = file_stamp(ca_file)
        # A missing or broken file fails here, at the first client, as before.
        self.load_verify_locations(cafile=str(ca_file))
        self._checked = clock()

    def follow(self) -> bool:
        """Add the file's certificates when it changed since last looked at (at most every
        recheck_s) and holds only sound ones; True when it added them. A file that does not
        parse (caught half-written, cut) is logged and the CAs trusted so far stay."""
        with self._lock:
            now = self._clock()
            if now - self._checked < self._recheck_s:
                return False
            self._checked = now
            stamp = file_stamp(self.ca_file)
            if stamp == self._stamp:
                return False
            # Taken before reading: a write after it shows as one more change next time.
            self._stamp = stamp
            try:
                bundle = self._read()
            except (OSError, ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                log.error("kafka.ca_unreadable", file=str(self.ca_file), error=reason)
                return False
            self.load_verify_locations(cadata=bundle)
            log.info("kafka.ca_renewed", file=str(self.ca_file))
            return True

    def _read(self) -> str:
        """The bundle, checked whole in a context of its own first, so one that does not
        parse adds nothing; read twice, equal, so the check saw what is added."""
        first = self.ca_file.read_text(encoding="ascii")
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=first)
        if self.ca_file.read_text(encoding="ascii") != first:
            raise ValueError("changed while being read")
        return first

    # aiokafka connects through asyncio, which wraps a BIO; kafka-python wraps its socket.
    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.follow()
        return super().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.follow()
        return super().wrap_socket(*args, **kwargs)


_contexts: dict[Path, FollowedCaContext] = {}
_contexts_lock = threading.Lock()


def context_for(ca_file: Path) -> FollowedCaContext:
    """The process's one context for `ca_file`, made at the first client that needs it."""
    key = Path(ca_file).absolute()
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _contexts[key] = FollowedCaContext(key)
        return context
