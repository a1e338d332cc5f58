"""The service's grpc.aio server, on the service's event loop.

Started once the service's partitions are recovered (so no call reads half-recovered
state), stopped first on shutdown. It serves the standard health service and server
reflection beside the service's own API; with EMEUSE_<SERVICE>_HEALTH_PORT, the health
service alone on a plaintext port too, for probes that speak no TLS.
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from aiokafka.errors import KafkaError
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from emeuse.kernel.router import FORWARDED
from emeuse.runtime import grpc_tls, limits, metrics, roles
from emeuse.runtime.audit import AuditTrail, access_records, subjects_of
from emeuse.runtime.auth import (
    ON_BEHALF_OF,
    OPEN_PREFIXES,
    AuthSetupError,
    Caller,
    caller_of,
    default_role,
    read_caller_book,
)
from emeuse.runtime.certificates import CertificateFiles, Certificates
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import EnvelopeError
from emeuse.runtime.id_guard import identifier_problem
from emeuse.runtime.settings import ServiceSettings

log = structlog.get_logger("emeuse.grpc")
# Labels of calls that name no method of the service, or no known caller.
UNKNOWN_METHOD, UNKNOWN_CALLER = "unknown", "unknown"
# Statuses of a call to another instance that the caller gets as they are.
PASSED_ON = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
SHUTDOWN_GRACE_SECONDS = 5.0
# How often the callers file is looked at for changes (added, changed, removed callers).
CALLERS_RECHECK_S = 1.0
# Refusals whose message the platform writes itself (no request value): kept in the audit.
OWN_REFUSALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
AuditSink = Callable[[list[Any]], None]

# Adds the service's servicers to the server; returns their full service names.
Registrar = Callable[[grpc.aio.Server], Iterable[str]]


class CallersFile:
    """The callers file, read again when it changes, so callers can be added, changed and
    removed without a restart. A file that turns malformed is logged and the callers read
    before are kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._book: dict[str, Caller] = read_caller_book(path)
        self._stamp = self._stat()
        self._checked = time.monotonic()

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def book(self) -> Mapping[str, Caller]:
        now = time.monotonic()
        if now - self._checked >= CALLERS_RECHECK_S:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._book = read_caller_book(self.path)
                    log.info("grpc.callers_reloaded", callers=len(self._book))
                except AuthSetupError as exc:
                    log.error("grpc.callers_unreadable", error=str(exc))
        return self._book


class FixedCallers:
    """Callers given once (tests); a bare caller id gets the role its name implies."""

    def __init__(self, callers: Mapping[str, Caller | str]) -> None:
        self._book = {
            h: c if isinstance(c, Caller) else Caller(c, default_role(c))
            for h, c in callers.items()
        }

    def book(self) -> Mapping[str, Caller]:
        return self._book


class Guard(grpc.aio.ServerInterceptor):
    """Around every call of the service's own API, in this order: who calls (a known bearer
    token, else UNAUTHENTICATED), whether their role may call the method (roles.py, else
    PERMISSION_DENIED), the request's bounds (limits.py) and id rules (id_guard.py: no
    direct identifier), else INVALID_ARGUMENT naming the field, the server's deadline
    (DEADLINE_EXCEEDED), a documented status for every failure (never UNKNOWN), one count
    per answer, refusals included, and an audit record per person the call touched."""

    def __init__(
        self,
        service: str,
        callers: CallersFile | FixedCallers | Mapping[str, Caller | str],
        deadline: Callable[[str], float] = limits.call_seconds,
        audit: AuditSink | None = None,
        max_request_bytes: int = limits.MAX_REQUEST_BYTES,
        max_in_flight: int = limits.MAX_IN_FLIGHT,
    ) -> None:
        self.max_request_bytes = max_request_bytes
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._in_flight_gauge = metrics.GRPC_IN_FLIGHT.labels(service)
        self.service = service
        self.callers = (
            callers if isinstance(callers, (CallersFile, FixedCallers)) else (FixedCallers(callers))
        )
        self.deadline = deadline
        self.audit = audit

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        method = details.method
        if method.startswith(OPEN_PREFIXES):
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            # Not a method of this service: gRPC answers UNIMPLEMENTED. The name is the
            # caller's text, so it is not a label.
            self._count(UNKNOWN_METHOD, UNKNOWN_CALLER, grpc.StatusCode.UNIMPLEMENTED)
            return None
        if handler.unary_unary is None:
            return handler
        metadata = dict(details.invocation_metadata or ())
        caller, refusal = self._identify(metadata, method)
        inner = handler.unary_unary
        if caller is None:
            inner = _refuse
            log.warning("grpc.unauthenticated", method=method, reason=refusal)
        elif refusal:
            inner = _denied(refusal)
            log.warning(
                "grpc.permission_denied", method=method, caller=caller.caller_id, reason=refusal
            )
        # A forwarded call was audited where it came in.
        audited = self.audit is not None and not metadata.get(FORWARDED)

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            cancelled = False
            response = None
            answer, checked = inner, None if refusal else caller
            if not refusal and (overload := self._overload()):
                answer, checked = overload, None
            self.in_flight += 1
            self._in_flight_gauge.set(self.in_flight)
            try:
                # A refused caller is refused before its request is looked at.
                response = await self._answer(answer, request, context, method, checked)
                return response
            except asyncio.CancelledError:
                cancelled = True  # the caller went away or its own deadline passed
                raise
            finally:
                self.in_flight -= 1
                self._in_flight_gauge.set(self.in_flight)
                code = context.code() or grpc.StatusCode.OK
                code = grpc.StatusCode.CANCELLED if cancelled else code
                self._count(method, caller.caller_id if caller else UNKNOWN_CALLER, code)
                metrics.GRPC_SECONDS.labels(self.service, method).observe(
                    time.perf_counter() - started
                )
                if audited:
                    try:
                        self._audit(method, caller, request, response, context, code, refusal)
                    except Exception as exc:  # the call is answered whatever the audit does
                        metrics.AUDIT_RECORDS_FAILED.labels(self.service, "build").inc()
                        log.error("audit.record_failed", method=method, error=type(exc).__name__)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=_within_size(handler.request_deserializer, self.max_request_bytes),
            response_serializer=handler.response_serializer,
        )

    def _overload(self) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]] | None:
        """A refusal when max_in_flight calls are being answered already, else None: beyond
        that a call would only wait its turn and make every call behind it later (under
        overload the queue only grows, and its callers give up before their turn). gRPC
        itself drops a call whose caller gave up before it reached the guard."""
        if self.in_flight >= self.max_in_flight:
            return _refusal(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the service is answering {self.in_flight} calls already; try again shortly",
            )
        return None

    def _identify(self, metadata: dict[str, Any], method: str) -> tuple[Caller | None, str]:
        """The caller the call is answered for, and why it is refused ("" when it is not).
        An instance of this service forwarding a call names the caller it acts for."""
        book = self.callers.book()
        caller, refusal = caller_of(book, metadata.items())
        if caller is None:
            return None, refusal
        acting_for = str(metadata.get(ON_BEHALF_OF, ""))
        if acting_for and caller.role == roles.SERVICE and caller.caller_id == self.service:
            original = next((c for c in book.values() if c.caller_id == acting_for), None)
            if original is None:
                return caller, f"caller {acting_for} is no longer allowed"
            caller = original
        return caller, roles.refusal(caller, method)

    async def _answer(
        self,
        inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
        request: Any,
        context: grpc.aio.ServicerContext,
        method: str,
        caller: Caller | None,
    ) -> Any:
        if caller is not None:
            if isinstance(request, _Unread):
                await context.abort(request.code, request.message)
            problem = limits.out_of_bounds(request) or identifier_problem(request, method)
            if problem:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
            log.info("grpc.called", caller=caller.caller_id, method=method)
        roles.CURRENT_CALLER.set(caller)
        seconds = self.deadline(method)
        timer = asyncio.timeout(seconds)
        try:
            async with timer:
                return await inner(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            if context.code() not in (None, grpc.StatusCode.OK):
                raise  # the handler chose its status already
            code, message = failure_status(exc)
            if timer.expired():
                message = f"not answered within the server's deadline of {seconds:g} s"
            elif code == grpc.StatusCode.INTERNAL:
                message = _logged_internal(exc, method, caller.caller_id if caller else None)
            await context.abort(code, message)
            raise

    def _audit(
        self,
        method: str,
        caller: Caller | None,
        request: Any,
        response: Any,
        context: grpc.aio.ServicerContext,
        code: grpc.StatusCode,
        refusal: str,
    ) -> None:
        assert self.audit is not None
        if isinstance(request, _Unread):
            return
        # A request that names its persons says whom the call touched; a list call
        # (ListAlerts, ListOpenRequests) touched the persons of its answer.
        subjects = subjects_of(request) or subjects_of(response)
        if not subjects:
            return
        rule = roles.rule_of(method)
        if caller is None:
            reason = "a valid bearer token is required"
        else:
            reason = refusal or (_refused_here(context) if code in OWN_REFUSALS else "")
        self.audit(
            access_records(
                service=self.service,
                method=method,
                caller_id=caller.caller_id if caller else UNKNOWN_CALLER,
                role=caller.role if caller else "",
                write=rule is not None and rule.action == roles.Action.WRITE,
                subjects=subjects,
                outcome=code.name,
                refusal_reason=reason,
            )
        )

    def _count(self, method: str, caller: str, code: grpc.StatusCode) -> None:
        metrics.GRPC_REQUESTS.labels(self.service, method, code.name, caller).inc()


def current_caller() -> str | None:
    """The caller id the guard authenticated for the call being answered (the original
    caller on a call forwarded for it); None outside one. Its role: roles.current_caller()."""
    caller = roles.current_caller()
    return caller.caller_id if caller else None


def _refused_here(context: grpc.aio.ServicerContext) -> str:
    # A servicer refuses a person with roles.patient_refusal's words (no request value); a
    # forwarded call's refusal comes back prefixed with the owner instance, left out here.
    details = str(context.details() or "")
    return details.rpartition(": ")[2] if details.startswith("owner ") else details


def failure_status(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The documented status of a failure a handler did not map itself; INTERNAL for any
    other (the caller then gets an error id, never the exception)."""
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "not answered in time; try again"
    if isinstance(exc, (InvalidEventError, EnvelopeError)):
        # Written for the sender: they name the field and the rule, not the value.
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, KafkaError):
        return grpc.StatusCode.UNAVAILABLE, "the event bus is unavailable; try again shortly"
    if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in PASSED_ON:
        return exc.code(), "another instance of the service did not answer; try again"
    return grpc.StatusCode.INTERNAL, ""


def _logged_internal(exc: Exception, method: str, caller: str | None) -> str:
    # The log names the failure's class and where it arose, never its message: a message
    # may quote the request.
    error_id = uuid.uuid4().hex[:12]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    log.error(
        "grpc.failed",
        error_id=error_id,
        method=method,
        caller=caller,
        error=type(exc).__name__,
        where=where,
    )
    return f"internal error {error_id}; the service logged it"


@dataclass(frozen=True)
class _Unread:
    """A request refused before it was parsed, with the status to answer."""

    code: grpc.StatusCode
    message: str


def _within_size(
    deserialize: Callable[[bytes], Any] | None, max_bytes: int
) -> Callable[[bytes], Any]:
    # Measured here rather than by gRPC's own receive limit, which refuses a call before
    # any interceptor sees it: such a refusal could be neither authenticated nor counted.
    def read(data: bytes) -> Any:
        if len(data) > max_bytes:
            return _Unread(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the request is {len(data)} bytes; at most {max_bytes}",
            )
        try:
            return deserialize(data) if deserialize else data
        except DecodeError:
            return _Unread(
                grpc.StatusCode.INVALID_ARGUMENT, "the request is not the method's message"
            )

    return read


async def _refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")


def _denied(reason: str) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    return _refusal(grpc.StatusCode.PERMISSION_DENIED, reason)


def _refusal(
    code: grpc.StatusCode, reason: str
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, reason)

    return refuse


def certificate_expiries(service: str, certificates: Certificates) -> dict[str, float]:
    """When the certificate the service serves and its CA expire, also set as gauges (an
    alert rule warns 14 days ahead): at start, and again for each renewed certificate."""
    expiries = {"ca": certificates.ca_expires}
    if certificates.expires is not None:
        expiries["service"] = certificates.expires
    for certificate, seconds in expiries.items():
        metrics.TLS_CERTIFICATE_EXPIRY.labels(service, certificate).set(seconds)
    return expiries


async def _follow(files: CertificateFiles) -> None:
    # Connections look at the files too, but the expiry gauge must follow a renewal on a
    # server no one connects to.
    while True:
        await asyncio.sleep(files.recheck_s)
        try:
            files.renewed()
        except Exception as exc:  # the next look tries again
            log.error("tls.follow_failed", error=type(exc).__name__)


async def _serve_probes(
    servicer: health.aio.HealthServicer, host: str, port: int
) -> grpc.aio.Server:
    """The same health answers in plaintext, alone, for kubelet's gRPC probes, which speak
    no TLS: the API and reflection stay behind the (mutual) TLS port."""
    probes = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, probes)
    if probes.add_insecure_port(f"{host}:{port}") == 0:
        raise RuntimeError(f"gRPC health cannot bind {host}:{port}")
    await probes.start()
    return probes


class GrpcServer:
    """gRPC API of one service, with health and reflection."""

    def __init__(
        self,
        settings: ServiceSettings,
        register: Registrar,
        callers: Mapping[str, str],
        audit: AuditTrail | None = None,
    ) -> None:
        # `callers` (token hash -> id) is what the service read at start and proves the
        # file sound; the Guard reads the file itself, with roles, and follows its changes.
        self.callers = callers
        self.settings = settings
        self.register = register
        self.server: grpc.aio.Server | None = None
        self.probes: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()
        self.audit = audit or AuditTrail(settings)
        self._following: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.audit.start()
        settings = self.settings
        guard = Guard(
            settings.service,
            CallersFile(settings.grpc_callers_file),
            deadline=limits.deadlines(settings.grpc_call_seconds, settings.grpc_replay_seconds),
            audit=self.audit.record,
            max_request_bytes=settings.grpc_max_request_bytes,
            max_in_flight=settings.grpc_max_in_flight,
        )
        server = grpc.aio.server(
            interceptors=[guard],
            options=[
                (
                    "grpc.max_receive_message_length",
                    limits.RECEIVE_FACTOR * settings.grpc_max_request_bytes,
                ),
                ("grpc.max_send_message_length", limits.MAX_SEND_BYTES),
            ],
        )
        names = list(self.register(server))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        expiries: dict[str, float] = {}
        files = None
        if settings.grpc_tls.on:

            def taken(renewed: Certificates) -> None:
                certificate_expiries(settings.service, renewed)

            # Followed from now on: a renewed certificate is served without a restart.
            files = CertificateFiles(settings.grpc_tls, taken=taken)
            expiries = certificate_expiries(settings.service, files.current)
        if grpc_tls.bind(server, settings.grpc_address, settings.grpc_tls, files) == 0:
            raise RuntimeError(f"gRPC cannot bind {settings.grpc_address}")
        if files is not None:
            self._following = asyncio.create_task(_follow(files))
        await server.start()
        self.server = server
        if settings.health_port:
            self.probes = await _serve_probes(self.health, settings.grpc_host, settings.health_port)
        for name in ["", *names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "grpc.serving",
            address=settings.grpc_address,
            services=names,
            tls=settings.grpc_tls.mode,
            certificate_expires=expiries.get("service"),
            health_port=settings.health_port or None,
        )

    async def stop(self) -> None:
        if self.server is None:
            return
        if self._following is not None:
            self._following.cancel()
        await self.health.enter_graceful_shutdown()
        if self.probes is not None:
            await self.probes.stop(None)
        await self.server.stop(SHUTDOWN_GRACE_SECONDS)
        await self.audit.stop()
        log.info("grpc.stopped")
