"""The service's grpc.aio server, on the service's event loop.

Started once the service's partitions are recovered (so no call reads half-recovered
state), stopped first on shutdown. It serves the standard health service and server
reflection beside the service's own API.
"""

from __future__ import annotations

import asyncio
import contextvars
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from aiokafka.errors import KafkaError
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from emeuse.runtime import limits, metrics
from emeuse.runtime.auth import OPEN_PREFIXES, caller_of
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

# The authenticated caller of the call being answered (each call runs in its own task),
# for a method that only some callers may use (read it with current_caller()).
CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("grpc_caller", default=None)

# Adds the service's servicers to the server; returns their full service names.
Registrar = Callable[[grpc.aio.Server], Iterable[str]]


class Guard(grpc.aio.ServerInterceptor):
    """Around every call of the service's own API, in this order: who calls (a known bearer
    token, else UNAUTHENTICATED), the request's bounds (limits.py) and id rules (id_guard.py:
    no direct identifier), else INVALID_ARGUMENT naming the field, the server's deadline
    (DEADLINE_EXCEEDED), a documented status for every failure (never UNKNOWN), and one
    count per answer, refusals included."""

    def __init__(
        self,
        service: str,
        callers: dict[str, str],
        deadline: Callable[[str], float] = limits.call_seconds,
    ) -> None:
        self.service = service
        self.callers = callers
        self.deadline = deadline

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
        caller, refusal = caller_of(self.callers, details.invocation_metadata)
        inner = _refuse if caller is None else handler.unary_unary
        if caller is None:
            log.warning("grpc.unauthenticated", method=method, reason=refusal)

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            cancelled = False
            try:
                return await self._answer(inner, request, context, method, caller)
            except asyncio.CancelledError:
                cancelled = True  # the caller went away or its own deadline passed
                raise
            finally:
                code = context.code() or grpc.StatusCode.OK
                self._count(
                    method,
                    caller or UNKNOWN_CALLER,
                    grpc.StatusCode.CANCELLED if cancelled else code,
                )

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=_within_size(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    async def _answer(
        self,
        inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
        request: Any,
        context: grpc.aio.ServicerContext,
        method: str,
        caller: str | None,
    ) -> Any:
        if caller is not None:
            if isinstance(request, _Unread):
                await context.abort(request.code, request.message)
            problem = limits.out_of_bounds(request) or identifier_problem(request, method)
            if problem:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
            log.info("grpc.called", caller=caller, method=method)
            CALLER.set(caller)
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
                message = _logged_internal(exc, method, caller)
            await context.abort(code, message)
            raise

    def _count(self, method: str, caller: str, code: grpc.StatusCode) -> None:
        metrics.GRPC_REQUESTS.labels(self.service, method, code.name, caller).inc()


def current_caller() -> str | None:
    """The caller id the guard authenticated for the call being answered; None outside one."""
    return CALLER.get()


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


def _within_size(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    # Measured here rather than by gRPC's own receive limit, which refuses a call before
    # any interceptor sees it: such a refusal could be neither authenticated nor counted.
    def read(data: bytes) -> Any:
        if len(data) > limits.MAX_REQUEST_BYTES:
            return _Unread(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the request is {len(data)} bytes; at most {limits.MAX_REQUEST_BYTES}",
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


class GrpcServer:
    """gRPC API of one service, with health and reflection."""

    def __init__(
        self, settings: ServiceSettings, register: Registrar, callers: dict[str, str]
    ) -> None:
        self.callers = callers
        self.settings = settings
        self.register = register
        self.server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=[Guard(self.settings.service, self.callers)],
            options=[
                ("grpc.max_receive_message_length", limits.MAX_RECEIVE_BYTES),
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
        if server.add_insecure_port(self.settings.grpc_address) == 0:
            raise RuntimeError(f"gRPC cannot bind {self.settings.grpc_address}")
        await server.start()
        for name in ["", *names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.server = server
        log.info("grpc.serving", address=self.settings.grpc_address, services=names)

    async def stop(self) -> None:
        if self.server is None:
            return
        await self.health.enter_graceful_shutdown()
        await self.server.stop(SHUTDOWN_GRACE_SECONDS)
        log.info("grpc.stopped")
