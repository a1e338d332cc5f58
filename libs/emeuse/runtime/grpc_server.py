"""The service's grpc.aio server, on the service's event loop.

Started once the service's partitions are recovered (so no call reads half-recovered
state), stopped first on shutdown. It serves the standard health service and server
reflection beside the service's own API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from emeuse.runtime import metrics
from emeuse.runtime.auth import Authenticate
from emeuse.runtime.id_guard import RefuseIdentifyingIds
from emeuse.runtime.settings import ServiceSettings

log = structlog.get_logger("emeuse.grpc")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 5.0

# Adds the service's servicers to the server; returns their full service names.
Registrar = Callable[[grpc.aio.Server], Iterable[str]]


class _CountCalls(grpc.aio.ServerInterceptor):
    """Counts answered calls by method and status code."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]] = handler.unary_unary
        service, method = self.service, details.method

        async def counted(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                response = await inner(request, context)
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN
                metrics.GRPC_REQUESTS.labels(service, method, code.name).inc()
                raise
            code = context.code() or grpc.StatusCode.OK
            metrics.GRPC_REQUESTS.labels(service, method, code.name).inc()
            return response

        return grpc.unary_unary_rpc_method_handler(
            counted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


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
            interceptors=[
                Authenticate(self.callers),
                _CountCalls(self.settings.service),
                RefuseIdentifyingIds(),
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
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
