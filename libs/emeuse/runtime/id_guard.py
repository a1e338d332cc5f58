"""Every gRPC request's id fields checked before its handler runs (emeuse.runtime.id_rules).

A request whose id field holds a direct identifier, or breaks its rule, is refused with
INVALID_ARGUMENT naming the field and the kind of identifier, never the value: nothing
identifying reaches a handler, the bus, or a log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog

from emeuse.runtime.id_rules import IdentifyingContentError, IdRuleError, check_ids

log = structlog.get_logger("emeuse.grpc")


class RefuseIdentifyingIds(grpc.aio.ServerInterceptor):
    """Checks the id fields of every unary request."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]] = handler.unary_unary
        method = details.method

        async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                check_ids(request)
            except IdentifyingContentError as exc:
                log.warning(
                    "grpc.identifier_refused", method=method, field=exc.field, kind=exc.kind
                )
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except IdRuleError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            checked,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
