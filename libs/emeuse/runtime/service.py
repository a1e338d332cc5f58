"""The composition every service shares: app, bus, router and gRPC server, wired once."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TypeVar

import faust
from mode import Service

from emeuse.runtime.app import create_app
from emeuse.runtime.auth import AuthSetupError, read_callers, read_token
from emeuse.runtime.bus import Bus
from emeuse.runtime.calls import publish_for_caller, require_pseudonym, until_applied
from emeuse.runtime.grpc_server import GrpcServer, Registrar
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


class _GrpcWebServer(Service):
    """The gRPC server as a faust worker's web server: started after table recovery."""

    def __init__(self, server: GrpcServer, **kwargs: Any) -> None:
        self.server = server
        super().__init__(**kwargs)

    @property
    def web_url(self) -> str:
        return f"http://{self.server.settings.advertised_host}:{self.server.settings.grpc_port}"

    async def on_start(self) -> None:
        await self.server.start()

    async def on_stop(self) -> None:
        await self.server.stop()


def serve_grpc(runtime: Runtime, register: Registrar) -> None:
    """Register the gRPC server as the worker's web server: started after table recovery."""
    server = GrpcServer(runtime.settings, register, runtime.callers)
    runtime.app.web_server(_GrpcWebServer(server, loop=runtime.app.loop))


__all__ = ["publish_for_caller", "require_pseudonym", "until_applied"]
