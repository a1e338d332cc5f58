"""Running a service: logs, /metrics, the faust worker, a clean stop on SIGTERM."""

from __future__ import annotations

import sys
from typing import TypeVar

import faust
import structlog

from emeuse.runtime.bus import Bus
from emeuse.runtime.lag import record_consumer_lag
from emeuse.runtime.logs import configure_logging
from emeuse.runtime.metrics import serve_metrics
from emeuse.runtime.settings import ServiceSettings, settings_or_exit
from emeuse.runtime.topics import TopicError, changelog_plans, ensure_topics
from emeuse.runtime.watchdog import add_watchdog

LAG_INTERVAL_SECONDS = 5.0
SettingsT = TypeVar("SettingsT")


def run_worker(app: faust.App, settings: ServiceSettings, bus: Bus) -> None:
    """Run the worker until SIGTERM/SIGINT; mode's Worker stops services in order."""
    configure_logging(settings.service, settings.log_level)
    log = structlog.get_logger("emeuse.worker")

    @app.timer(LAG_INTERVAL_SECONDS)
    async def measure_consumer_lag() -> None:
        await record_consumer_lag(app, settings.service)

    add_watchdog(
        app,
        settings.service,
        settings.kafka_bootstrap,
        busy=lambda: bus.handling > 0,
        group=str(app.conf.id),
    )

    try:
        ensure_topics(
            ",".join(settings.kafka_bootstrap), changelog_plans(app), settings.replication_factor
        )
    except TopicError as exc:
        log.error("service.topics_unavailable", error=str(exc))
        raise SystemExit(1) from None
    try:
        serve_metrics(settings.metrics_port, settings.grpc_host)
    except OSError as exc:
        print(
            f"emeuse: cannot serve metrics on port {settings.metrics_port}: {exc}", file=sys.stderr
        )
        raise SystemExit(2) from None
    log.info(
        "service.starting",
        kafka=",".join(settings.kafka_bootstrap),
        grpc=settings.grpc_address,
        metrics=f"{settings.grpc_host}:{settings.metrics_port}",
    )
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False, quiet=True)
    # The terminal spinner writes escape codes into the JSON log stream.
    worker.spinner = None
    worker.execute_from_commandline()


__all__ = ["run_worker", "settings_or_exit"]
