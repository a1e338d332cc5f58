"""The composition every service shares: app, bus, router and gRPC server, wired once."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import faust
import grpc

from emeuse.runtime.app import create_app
from emeuse.runtime.auth import AuthSetupError, read_callers, read_token
from emeuse.runtime.bus import Bus
from emeuse.runtime.grpc_server import GrpcServer, Registrar
from emeuse.runtime.pseudonym import is_pseudonym
from emeuse.runtime.routing import Router
from emeuse.runtime.settings import ServiceSettings


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


async def require_pseudonym(context: grpc.aio.ServicerContext, value: str, field: str) -> None:
    """Abort the call with INVALID_ARGUMENT unless `value` is a platform pseudonym."""
    if not is_pseudonym(value):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"{field} must be a platform pseudonym (psn-...)"
        )
