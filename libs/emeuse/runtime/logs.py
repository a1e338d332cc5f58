"""Structured JSON logs: one event name and its fields per line, never a payload or identity.

The event id and correlation id of the record being handled are bound in context vars,
so every line logged while handling it carries them.
"""

from __future__ import annotations

import logging
import sys
import threading
from contextvars import ContextVar

import structlog
from structlog.typing import EventDict, Processor

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.runtime.outage import BrokerOutageFilter, watch

# The event being handled: (topic, event id, correlation id). One context variable set per
# record; its ids are added to a line only when something is logged.
_EVENT: ContextVar[tuple[str, str, str] | None] = ContextVar("emeuse_event", default=None)


def _add_event_ids(_: object, __: str, event_dict: EventDict) -> EventDict:
    ids = _EVENT.get()
    if ids is not None:
        topic, event_id, correlation_id = ids
        event_dict.setdefault("topic", topic)
        if event_id:
            event_dict.setdefault("event_id", event_id)
            event_dict.setdefault("correlation_id", correlation_id)
    return event_dict


_BROKER_OUTAGES = BrokerOutageFilter()
_WATCHED: list[threading.Thread] = []

_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    _add_event_ids,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(service: str, level: str = "info") -> None:
    """JSON lines on stderr for our logs and for aiokafka's and kafka-python's stdlib logging."""
    numeric = getattr(logging, level.upper())
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    # A broker outage is one line and its end another, not a line per reconnect attempt.
    handler.addFilter(_BROKER_OUTAGES)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # The libraries are chatty at INFO: their warnings still show, and their INFO lines
    # reach the outage filter only, which reads in them that the broker answers again.
    _BROKER_OUTAGES.shown_level = max(numeric, logging.WARNING)
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.INFO)
    structlog.contextvars.bind_contextvars(service=service)
    if not _WATCHED:  # one watcher per process, however often logging is configured
        _WATCHED.append(watch(_BROKER_OUTAGES))


def event_context(envelope: EventEnvelope | None, topic: str) -> ids_context:
    """Bind the ids of the event being handled to every log line inside."""
    if envelope is None:
        return ids_context(topic, "", "")
    return ids_context(topic, envelope.event_id, envelope.correlation_id)


class ids_context:
    """The same for what is not a record: a timer's firing has an id of its own. A class, not
    a generator: it is entered for every record handled."""

    __slots__ = ("_ids", "_token")

    def __init__(self, topic: str, event_id: str, correlation_id: str) -> None:
        self._ids = (topic, event_id, correlation_id)

    def __enter__(self) -> None:
        self._token = _EVENT.set(self._ids)

    def __exit__(self, *_: object) -> None:
        _EVENT.reset(self._token)
