"""The composition every service shares: app, bus, router and gRPC server, wired once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import faust
import grpc
from aiokafka.errors import KafkaError
from google.protobuf.message import Message

from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import TopicSpec
from emeuse.runtime.app import create_app
from emeuse.runtime.auth import AuthSetupError, read_callers, read_token
from emeuse.runtime.bus import Bus
from emeuse.runtime.grpc_server import GrpcServer, Registrar
from emeuse.runtime.pseudonym import is_pseudonym
from emeuse.runtime.routing import Router
from emeuse.runtime.settings import ServiceSettings

T = TypeVar("T")


@dataclass(frozen=True)
class Runtime:
    """What a service's agents and servicers are given."""

    app: faust.App
    bus: Bus
    router: Router
    settings: ServiceSettings
    # Who may call this service, and the token it presents when it calls another.
    callers: dict[str, str]
    token: str


def build_runtime(settings: ServiceSettings) -> Runtime:
    """Reads the gRPC callers and token files: a missing one stops the service with its path."""
    try:
        callers = read_callers(settings.grpc_callers_file)
        token = read_token(settings.grpc_token_file)
    except AuthSetupError as exc:
        print(f"emeuse: {exc} (create them with `emeuse callers add NAME`)", file=sys.stderr)
        raise SystemExit(2) from None
    app = create_app(settings)
    router = Router(app, settings.grpc_deadline_seconds, token)
    return Runtime(app, Bus(app, settings), router, settings, callers, token)


def serve_grpc(runtime: Runtime, register: Registrar) -> None:
    """Register the gRPC server as the worker's web server: started after table recovery."""
    runtime.app.web_server(
        GrpcServer(runtime.settings, register, runtime.callers, loop=runtime.app.loop)
    )


async def publish_for_caller(
    context: grpc.aio.ServicerContext,
    bus: Bus,
    spec: TopicSpec,
    message: Message,
    *,
    key: str,
    subject: str,
    territory: Territory.ValueType,
    experiment: str | None = None,
    occurred_at: datetime | None = None,
) -> str:
    """Publish an event a gRPC call asked for and return its id; a broker that does not
    take it answers the call UNAVAILABLE."""
    try:
        envelope = await bus.publish(
            spec,
            message,
            key=key,
            subject_pseudonym=subject,
            occurred_at=occurred_at or datetime.now(UTC),
            territory=territory,
            experiment_id=experiment or None,
        )
    except KafkaError as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"the bus did not take it: {exc}")
        raise
    return envelope.event_id


async def until_applied(
    context: grpc.aio.ServicerContext,
    applied: Callable[[], T | None],
    seconds: float,
    hint: str = "ask again shortly",
) -> T:
    """For a write a service's agent applies: poll the local tables until `applied()`
    gives something, within `seconds`; else DEADLINE_EXCEEDED (accepted, not applied)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        found = applied()
        if found:
            return found
        await asyncio.sleep(0.05)
    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"accepted but not applied yet; {hint}")
    raise AssertionError("abort raises")


async def require_pseudonym(context: grpc.aio.ServicerContext, value: str, field: str) -> None:
    """Abort the call with INVALID_ARGUMENT unless `value` is a platform pseudonym."""
    if not is_pseudonym(value):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"{field} must be a platform pseudonym (psn-...)"
        )
