"""`PartnerApp`: declare handlers of typed events, run them on the partner's feed.

    app = PartnerApp("glucoflow")

    @app.handles(ReadingRecorded)
    async def on_reading(event: Envelope, reading: ReadingRecorded) -> None: ...

    @app.on_unreadable
    async def unreadable(record: Unreadable) -> None: ...  # set aside, by place and reason

`emeuse partner run module:app` runs it. Built on aiokafka directly, not faust: a partner
needs one consumer with manual commits, not tables or agents, and faust's known commit and
shutdown bugs (TECH-NOTES) would be the partner's to debug.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from wsgiref.simple_server import WSGIServer

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.kernel.raw_records import RawRecord, read_raw_record
from emeuse.partner.dispatch import Dispatcher, Handler, HandlerFunc, UnreadableHook
from emeuse.partner.inbound import Grants, inbound_record
from emeuse.partner.loop import FeedLoop, RawRead
from emeuse.partner.metrics import PartnerMetrics, default_metrics
from emeuse.partner.settings import PartnerSettings, RetryPolicy, load_partner_settings
from emeuse.partners import feed_topic
from emeuse.runtime.certificates import CertificateError
from emeuse.runtime.logs import configure_logging
from emeuse.runtime.metrics_server import serve_metrics
from emeuse.runtime.settings import SettingsError

log = structlog.get_logger("emeuse.partner")


class PartnerApp:
    def __init__(self, partner_id: str | None = None, *, retry: RetryPolicy | None = None) -> None:
        """`partner_id` is the default; EMEUSE_PARTNER_ID, when set, wins. `retry` is the
        default policy; EMEUSE_PARTNER_RETRIES and EMEUSE_PARTNER_BACKOFF_* override it."""
        self.default_id = partner_id
        self.default_retry = retry or RetryPolicy()
        self.handlers: dict[str, Handler] = {}
        self.unreadable_hook: UnreadableHook | None = None
        self.settings: PartnerSettings | None = None
        self._producer: AIOKafkaProducer | None = None
        self._metrics = default_metrics()
        self._stop = asyncio.Event()

    def handles(self, message_type: type[Message]) -> Callable[[HandlerFunc], HandlerFunc]:
        """Register the coroutine handling events of `message_type` (one per type)."""
        type_name = message_type.DESCRIPTOR.full_name

        def register(func: HandlerFunc) -> HandlerFunc:
            if not inspect.iscoroutinefunction(func):
                raise TypeError(f"handler {func.__name__} of {type_name} must be `async def`")
            if type_name in self.handlers:
                raise ValueError(f"{type_name} already has a handler")
            self.handlers[type_name] = Handler(message_type, func)
            return func

        return register

    def on_unreadable(self, func: UnreadableHook) -> UnreadableHook:
        """Register the coroutine told of each feed record no handler could be given: one the
        Kafka client cannot read (a header key not UTF-8, a corrupt batch), an invalid
        envelope or an undecodable value. It gets an `Unreadable` (topic, partition, offset,
        reason; never the content); the record is already on the dead-letter topic and the
        feed goes on past it. An exception it raises is logged, and stops nothing."""
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"on_unreadable hook {func.__name__} must be `async def`")
        if self.unreadable_hook is not None:
            raise ValueError("the app already has an on_unreadable hook")
        self.unreadable_hook = func
        return func

    @property
    def event_types(self) -> list[str]:
        return sorted(self.handlers)

    def configure(self, env: Mapping[str, str] | None = None) -> PartnerSettings:
        """Read the settings once (from os.environ by default); SettingsError if wrong."""
        self.settings = load_partner_settings(
            os.environ if env is None else env, self.default_id, self.default_retry
        )
        return self.settings

    @property
    def partner_id(self) -> str:
        if self.settings is None:
            raise RuntimeError("the app is not configured: call run() or configure()")
        return self.settings.partner_id

    def stop(self) -> None:
        """Ask the app to stop: the record in hand is finished, offsets committed."""
        self._stop.set()

    def run(self, env: Mapping[str, str] | None = None) -> int:
        """Run until SIGTERM or SIGINT; JSON logs, /metrics; returns the exit status."""
        settings = self.configure(env)
        configure_logging(f"partner-{settings.partner_id}", settings.log_level)
        structlog.contextvars.bind_contextvars(partner=settings.partner_id)
        serve_partner_metrics(settings)
        asyncio.run(self.serve())
        return 0

    async def serve(self, metrics: PartnerMetrics | None = None) -> None:
        """The app on the running loop: consume the feed until stopped."""
        settings = self.settings or self.configure()
        if not self.handlers:
            raise RuntimeError("the app handles no event type: decorate a handler with handles()")
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        metrics = metrics or default_metrics()
        topic = feed_topic(settings.partner_id)
        try:
            async with self.producing(metrics) as producer:
                dispatcher = Dispatcher(
                    partner_id=settings.partner_id,
                    experiment_id=settings.experiment_id,
                    handlers=self.handlers,
                    sender=producer,
                    metrics=metrics,
                    retry=settings.retry,
                    pause=self._pause,
                    on_unreadable=self.unreadable_hook,
                )
                consumer = AIOKafkaConsumer(
                    **settings.connection.client_options(),
                    client_id=f"partner-{settings.partner_id}",
                    group_id=settings.group_id,
                    enable_auto_commit=False,
                    auto_offset_reset=settings.offset_reset,
                    isolation_level="read_committed",
                )
                feed = FeedLoop(
                    consumer,
                    dispatcher,
                    metrics,
                    partner_id=settings.partner_id,
                    stop=self._stop,
                    read_raw=_raw_reader(settings),
                    offset_reset=settings.offset_reset,
                    max_batch=settings.max_batch,
                )
                consumer.subscribe([topic], listener=_Listener(feed))
                await consumer.start()
                log.info(
                    "partner.started",
                    topic=topic,
                    group=settings.group_id,
                    types=self.event_types,
                )
                try:
                    await feed.run()
                except Exception as exc:
                    log.error("partner.failed", error=type(exc).__name__)
                    raise
                finally:
                    await consumer.stop()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("partner.stopped")

    @asynccontextmanager
    async def producing(
        self, metrics: PartnerMetrics | None = None
    ) -> AsyncIterator[AIOKafkaProducer]:
        """A started producer for `publish` (and dead letters); stopped on exit."""
        settings = self.settings or self.configure()
        if not structlog.is_configured() and not logging.getLogger().handlers:
            # A script of the partner's own (a device) logs as `partner run` does, JSON on
            # stderr: structlog's default prints on stdout, mixed with what the script prints.
            configure_logging(f"partner-{settings.partner_id}", settings.log_level)
        self._metrics = metrics or self._metrics
        # acks=all without idempotence: an idempotent producer may need a cluster ACL a
        # partner's credential does not have; a dead letter written twice is harmless.
        producer = AIOKafkaProducer(
            **settings.connection.client_options(),
            client_id=f"partner-{settings.partner_id}",
            acks="all",
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        try:
            yield producer
        finally:
            self._producer = None
            await producer.stop()

    async def publish(
        self,
        message: Message,
        *,
        territory: str | None = None,
        experiment_id: str | None = None,
        cause: EventEnvelope | None = None,
        occurred_at: datetime | None = None,
        event_id: str | None = None,
    ) -> EventEnvelope:
        """Publish `message` on the partner's inbound topic and wait for the broker.

        Inside a handler, pass the handled event as `cause`: territory, experiment and
        correlation id follow it. Raises PublishError for an event the platform refuses.
        """
        if self._producer is None or self.settings is None:
            raise RuntimeError("publish needs a running app or `async with app.producing()`")
        record = inbound_record(
            self.partner_id,
            message,
            territory=territory,
            experiment_id=experiment_id or (None if cause else self.settings.experiment_id),
            occurred_at=occurred_at,
            cause=cause,
            event_id=event_id,
            grants=self.grants,
        )
        await self._producer.send_and_wait(
            record.topic, value=record.value, key=record.key, headers=record.headers
        )
        type_name = message.DESCRIPTOR.full_name
        self._metrics.published.labels(self.partner_id, type_name).inc()
        log.info("event.published", published_event_id=record.envelope.event_id, type=type_name)
        return record.envelope

    @property
    def grants(self) -> Grants | None:
        """The publish grants and experiments of the settings file; None if it lists none."""
        settings = self.settings
        if settings is None or settings.publishes is None:
            return None
        return Grants(settings.publishes, settings.experiments or ())

    async def _pause(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False


def _raw_reader(settings: PartnerSettings) -> RawRead:
    """Reads a record raw as the consumer would: same broker, same login, committed only."""
    options = settings.connection.client_options()
    bootstrap = options.pop("bootstrap_servers")

    async def read(topic: str, partition: int, offset: int) -> RawRecord | None:
        return await read_raw_record(bootstrap, topic, partition, offset, login=options)

    return read


class _Listener(ConsumerRebalanceListener):
    def __init__(self, feed: FeedLoop) -> None:
        self.feed = feed

    async def on_partitions_revoked(self, revoked: object) -> None:
        await self.feed.on_partitions_revoked(revoked)  # type: ignore[arg-type]

    async def on_partitions_assigned(self, assigned: object) -> None:
        await self.feed.on_partitions_assigned(assigned)  # type: ignore[arg-type]


def serve_partner_metrics(settings: PartnerSettings) -> WSGIServer | None:
    """/metrics as the settings say (none on port 0), over HTTPS when the settings file asks
    (metrics.tls): the services' server, renewed certificates taken without a restart.
    SettingsError names the address or the files when it cannot serve."""
    if not settings.metrics_port:
        return None
    where = f"{settings.metrics_host}:{settings.metrics_port}"
    try:
        return serve_metrics(settings.metrics_port, settings.metrics_host, settings.metrics_tls)
    except CertificateError as exc:
        raise SettingsError(f"/metrics on {where}: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"/metrics on {where}: {exc.strerror or exc}") from None
