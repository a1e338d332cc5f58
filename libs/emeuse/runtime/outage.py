"""One log line per broker outage, not one per reconnect attempt.

While a broker is down, aiokafka and kafka-python log each failed attempt (over 1,000
`Unable connect to node` lines in 30 s, per service). BrokerOutageFilter, on the log
handler, lets the first through as `broker.unreachable`, counts and drops the repeats and
their echoes (lost coordinator, failed heartbeats and fetches), with a
`broker.still_unreachable` line and the count every REMIND_S. The outage ends on the first
answer the broker is seen to give (a client's line that a coordinator was found, a group
joined, metadata or a producer id received): `broker.reachable`, with how long it lasted
and how many attempts failed. Silence is not an answer (a client may be waiting out its
reconnect back-off): a client that stops failing without any line of success closes the
outage after SILENT_S as `broker.failures_stopped`, so a later outage is still reported.
The libraries' own lines below `shown_level` (their INFO) are read for those answers and
not shown; other lines of theirs pass unchanged.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

SILENT_S = 60.0
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
# What the two clients say (at INFO) when the broker has answered them: their format strings.
BROKER_ANSWERS = (
    "Discovered coordinator",
    "Coordinator for",
    "Joined group",
    "Successfully joined group",
    "Successfully synced group",
    "Setting newly assigned partitions",
    "Updated metadata",
    "ProducerId set to",
)
KAFKA_LOGGERS = ("aiokafka", "kafka")


def _from_library(record: logging.LogRecord) -> bool:
    return record.name.split(".", 1)[0] in KAFKA_LOGGERS and isinstance(record.msg, str)


def _from_kafka(record: logging.LogRecord) -> bool:
    return _from_library(record) and record.levelno >= logging.WARNING


def is_broker_answer(record: logging.LogRecord) -> bool:
    return _from_library(record) and any(marker in record.msg for marker in BROKER_ANSWERS)


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
        silent_s: float = SILENT_S,
        remind_s: float = REMIND_S,
        shown_level: int = logging.WARNING,
    ) -> None:
        super().__init__()
        self._report = report or _log_report
        self._clock = clock
        self.silent_s = silent_s
        self.remind_s = remind_s
        # The libraries' lines below this are read (for answers), not shown.
        self.shown_level = shown_level
        self._lock = threading.Lock()
        self._since: float | None = None
        self._last = self._reminded = 0.0
        self._attempts = self._dropped = 0
        self._error = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_connection_failure(record):
            if is_broker_answer(record):
                self.answered(record.getMessage(), record.created)
            if self._since is not None and is_outage_echo(record):
                with self._lock:
                    self._dropped += 1
                return False
            return not _from_library(record) or record.levelno >= self.shown_level
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

    def answered(self, answer: str, at: float | None = None) -> None:
        """The broker answered a client (`answer` says how): the open outage, if any, ends."""
        at = self._clock() if at is None else at
        with self._lock:
            if self._since is None or at < self._last:
                return
            fields = self._close(at)
        self._report("broker.reachable", fields | {"answer": answer[:200]})

    def tick(self, now: float | None = None) -> None:
        """Close an outage no attempt has failed in for silent_s, though no answer was seen
        (called every second by a watcher thread, and before each failure is counted)."""
        now = self._clock() if now is None else now
        with self._lock:
            if self._since is None or now - self._last < self.silent_s:
                return
            fields = self._close(self._last)
        self._report("broker.failures_stopped", fields)

    def _close(self, end: float) -> dict[str, object]:
        assert self._since is not None
        fields: dict[str, object] = {
            "since": _iso(self._since),
            "down_s": round(end - self._since, 1),
            "attempts": self._attempts,
            "lines_not_shown": self._dropped,
            "last_error": self._error,
        }
        self._since = None
        return fields

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
