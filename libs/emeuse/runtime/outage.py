"""One log line per broker outage, not one per reconnect attempt.

While a broker is down, aiokafka and kafka-python log each failed attempt (over 1,000
`Unable connect to node` lines in 30 s, per service). BrokerOutageFilter, on the log
handler, lets the first through as `broker.unreachable`, counts and drops the repeats and
their echoes (lost coordinator, failed heartbeats and fetches), with a
`broker.still_unreachable` line and the count every REMIND_S, and once no attempt has
failed for QUIET_S logs `broker.reachable` with how long it lasted and how many attempts
failed. Other lines of those libraries pass unchanged.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

QUIET_S = 5.0
REMIND_S = 60.0
# What the two Kafka clients say when they cannot reach a broker: their format strings,
# and the errors a formatted line names.
CONNECTION_FAILURES = (
    "Unable connect to",
    "Unable to update metadata from",
    "Unable to request metadata from",
    "Connection lost",
    "Connection failed",
    "Bootstrap connection to",
    "Bootstrap attempt to",
    "socket disconnected",
)
CONNECTION_ERRORS = ("NodeNotReadyError", "KafkaConnectionError", "Connect call failed")
# What they say because of an outage (a coordinator lost, heartbeats and fetches failing):
# counted, not shown, while an outage is open; shown as they are otherwise.
OUTAGE_ECHOES = (
    "Marking the coordinator dead",
    "Heartbeat failed for group",
    "Heartbeat session expired",
    "Heartbeat send request failed",
    "Error sending HeartbeatRequest",
    "Group Coordinator Request failed",
    "Failed fetch messages from",
    "Metadata refresh loop error",
)
KAFKA_LOGGERS = ("aiokafka", "kafka")


def _from_kafka(record: logging.LogRecord) -> bool:
    return (
        record.name.split(".", 1)[0] in KAFKA_LOGGERS
        and record.levelno >= logging.WARNING
        and isinstance(record.msg, str)
    )


def is_connection_failure(record: logging.LogRecord) -> bool:
    if not _from_kafka(record):
        return False
    if any(marker in record.msg for marker in CONNECTION_FAILURES):
        return True
    text = record.getMessage()
    return any(error in text for error in CONNECTION_ERRORS)


def is_outage_echo(record: logging.LogRecord) -> bool:
    return _from_kafka(record) and any(marker in record.msg for marker in OUTAGE_ECHOES)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class BrokerOutageFilter(logging.Filter):
    def __init__(
        self,
        report: Callable[[str, dict[str, object]], None] | None = None,
        clock: Callable[[], float] = time.time,
        quiet_s: float = QUIET_S,
        remind_s: float = REMIND_S,
    ) -> None:
        super().__init__()
        self._report = report or _log_report
        self._clock = clock
        self.quiet_s = quiet_s
        self.remind_s = remind_s
        self._lock = threading.Lock()
        self._since: float | None = None
        self._last = self._reminded = 0.0
        self._attempts = self._dropped = 0
        self._error = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_connection_failure(record):
            if self._since is not None and is_outage_echo(record):
                with self._lock:
                    self._dropped += 1
                return False
            return True
        self.tick(record.created)
        with self._lock:
            self._error = record.getMessage()
            self._last = record.created
            if self._since is None:
                self._since = self._reminded = record.created
                self._attempts, self._dropped = 1, 0
                return self._rewrite(record, "broker.unreachable")
            self._attempts += 1
            if record.created - self._reminded >= self.remind_s:
                self._reminded = record.created
                return self._rewrite(record, "broker.still_unreachable")
            self._dropped += 1
            return False

    def tick(self, now: float | None = None) -> None:
        """Close the outage once no attempt has failed for quiet_s (called every second
        by a watcher thread, and before each failure is counted)."""
        now = self._clock() if now is None else now
        with self._lock:
            if self._since is None or now - self._last < self.quiet_s:
                return
            fields: dict[str, object] = {
                "since": _iso(self._since),
                "down_s": round(self._last - self._since, 1),
                "attempts": self._attempts,
                "lines_not_shown": self._dropped,
                "last_error": self._error,
            }
            self._since = None
        self._report("broker.reachable", fields)

    def _rewrite(self, record: logging.LogRecord, event: str) -> bool:
        assert self._since is not None
        record.msg, record.args = event, None
        record.since = _iso(self._since)
        record.attempts = self._attempts
        record.lines_not_shown = self._dropped
        record.error = self._error
        return True


def _log_report(event: str, fields: dict[str, object]) -> None:
    logging.getLogger("emeuse.broker").warning(event, extra=fields)


def watch(outages: BrokerOutageFilter, every_s: float = 1.0) -> threading.Thread:
    """A daemon thread that notices the end of an outage when nothing else is logged; it
    logs with the caller's context (the service name bound in structlog's contextvars)."""
    context = contextvars.copy_context()

    def run() -> None:
        while True:
            time.sleep(every_s)
            outages.tick()

    thread = threading.Thread(
        target=context.run, args=(run,), name="broker-outage-watch", daemon=True
    )
    thread.start()
    return thread
