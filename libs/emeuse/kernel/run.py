"""Running a service on the kernel: logs, /metrics, the kernel, then gRPC; a clean stop.

SIGTERM or SIGINT: gRPC stops taking calls, each partition task finishes its batch, the
consumer closes (a static member: a restart within the session timeout takes its
partitions back without a rebalance). A partition task that fails for a reason no record
explains stops the process with status 1, for its supervisor to restart it. Topics not
there yet at start are waited for (emeuse.runtime.startup); status 1 only once
EMEUSE_TOPICS_WAIT_SECONDS are spent.

Companions are what a service runs beside its partition tasks on the same loop (reading a
directory every instance keeps in full, say): started with the kernel, cancelled at the
stop; one that ends with an error stops the process like a failed task.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.errors import KafkaError

from emeuse.kernel.declare import Processor
from emeuse.kernel.edge import Publisher
from emeuse.kernel.engine import Kernel
from emeuse.kernel.router import Router
from emeuse.kernel.tables import Table
from emeuse.runtime import kafka_clients
from emeuse.runtime.audit import AuditTrail
from emeuse.runtime.auth import AuthSetupError, read_callers, read_token
from emeuse.runtime.certificates import CertificateError, read_certificates
from emeuse.runtime.grpc_server import GrpcServer, Registrar
from emeuse.runtime.logs import configure_logging
from emeuse.runtime.metrics_server import serve_metrics
from emeuse.runtime.security import KAFKA_PASSWORD_FILE
from emeuse.runtime.settings import ServiceSettings
from emeuse.runtime.topics import TopicError

log = structlog.get_logger("emeuse.worker")
Companion = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class KernelRuntime:
    """What a service's handlers and servicers are given."""

    kernel: Kernel
    bus: Publisher
    router: Router
    settings: ServiceSettings
    callers: dict[str, str]
    token: str
    # The service's audit trail: the gRPC guard's, and a servicer's own records (a replay's
    # deliveries); started and stopped with the gRPC server.
    audit: AuditTrail

    def table(self, name: str) -> Table:
        return Table(self.kernel, name)


def build_kernel_runtime(settings: ServiceSettings, processor: Processor) -> KernelRuntime:
    """Reads the gRPC callers and token files and checks the gRPC certificates: a missing or
    broken one stops the service with its path."""
    try:
        callers = read_callers(settings.grpc_callers_file)
        token = read_token(settings.grpc_token_file)
    except AuthSetupError as exc:
        print(f"emeuse: {exc} (create them with `emeuse callers add NAME`)", file=sys.stderr)
        raise SystemExit(2) from None
    if settings.grpc_tls.on:
        # A key that does not match its certificate stops the start here; once running, a
        # renewed pair that does not match is logged and the one in use kept.
        try:
            read_certificates(settings.grpc_tls)
        except CertificateError as exc:
            print(f"emeuse: gRPC TLS: {exc} (make them with scripts/certs.sh)", file=sys.stderr)
            raise SystemExit(2) from None
    # Every client of the process logs in as the service; a refused login stops it here.
    kafka_clients.log_in_or_exit(
        settings.kafka_bootstrap,
        settings.kafka_login,
        KAFKA_PASSWORD_FILE.variable(settings.service),
    )
    kernel = Kernel(
        processor,
        settings,
        instance_id=settings.instance_id,
        address=f"{settings.advertised_host}:{settings.grpc_port}",
    )
    router = Router(kernel, settings.grpc_deadline_seconds, token)
    return KernelRuntime(
        kernel, Publisher(settings), router, settings, callers, token, AuditTrail(settings)
    )


def run_service(
    rt: KernelRuntime,
    register: Callable[[KernelRuntime], Registrar],
    companions: Sequence[Companion] = (),
) -> None:
    """Run until SIGTERM/SIGINT; exit 1 when a partition task fails, 2 on a bad setup."""
    settings = rt.settings
    configure_logging(settings.service, settings.log_level)
    try:
        serve_metrics(settings.metrics_port, settings.grpc_host, settings.metrics_tls)
    except CertificateError as exc:
        print(f"emeuse: /metrics TLS: {exc} (make them with scripts/certs.sh)", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(
            f"emeuse: cannot serve metrics on port {settings.metrics_port}: {exc}", file=sys.stderr
        )
        raise SystemExit(2) from None
    scheme = "https" if settings.metrics_tls.on else "http"
    log.info(
        "service.starting",
        kafka=",".join(settings.kafka_bootstrap),
        grpc=settings.grpc_address,
        metrics=f"{scheme}://{settings.grpc_host}:{settings.metrics_port}/metrics",
        instance=settings.instance_id,
    )
    tune_collector()
    raise SystemExit(asyncio.run(_serve(rt, register(rt), companions)))


# CPython collects its youngest objects after 700 new ones. A service allocates a few dozen
# per record and keeps many objects for long (its imports, cached states): full collections
# walked them all, pausing the event loop for 100-300 ms several times a minute under load.
YOUNG_COLLECTION_AFTER = 10_000


def tune_collector() -> None:
    """Leave what start-up made out of every collection, and collect the young less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, 10, 10)


async def _serve(
    rt: KernelRuntime, registrar: Registrar, companions: Sequence[Companion] = ()
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # The kernel first: it waits out a broker not answering yet (with its topics), so
        # the gRPC edge's producer then finds it.
        await rt.kernel.start()
        await rt.bus.start()
    except TopicError as exc:
        log.error("service.topics_unavailable", error=str(exc))
        return 1
    except KafkaError as exc:  # the broker went away again within those seconds
        log.error("service.broker_unavailable", error=type(exc).__name__)
        await rt.kernel.stop()
        return 1
    assert rt.kernel.fatal is not None
    fatal = rt.kernel.fatal
    beside = [asyncio.create_task(_companion(start(), fatal)) for start in companions]
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    ready: asyncio.Future[Any] = asyncio.ensure_future(rt.kernel.ready.wait())
    failed: asyncio.Future[Any] = fatal
    await asyncio.wait({stopping, ready, failed}, return_when=asyncio.FIRST_COMPLETED)
    server = None
    if ready.done() and not stop.is_set() and not fatal.done():
        server = GrpcServer(rt.settings, registrar, rt.callers, rt.audit)
        await server.start()
        await asyncio.wait({stopping, failed}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    log.info("service.stopping", failed=fatal.done())
    if server is not None:
        await server.stop()
    for task in beside:
        task.cancel()
    await asyncio.gather(*beside, return_exceptions=True)
    await rt.kernel.stop()
    await rt.bus.stop()
    await rt.router.close()
    stopping.cancel()
    return 1 if fatal.done() else 0


async def _companion(work: Awaitable[None], fatal: asyncio.Future[BaseException]) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("service.companion_failed")
        if not fatal.done():
            fatal.set_result(exc)
