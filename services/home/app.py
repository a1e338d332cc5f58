"""Home service composition root: settings -> runtime -> table, agents, gRPC."""

from __future__ import annotations

from emeuse.runtime.service import Runtime, build_runtime, serve_grpc
from emeuse.runtime.worker import run_worker, settings_or_exit
from services.home import config, grpc_api
from services.home.agents import start_agents
from services.home.tables import declare_tables


def build() -> Runtime:
    rt = build_runtime(settings_or_exit(config.load))
    homes = declare_tables(rt.app)
    start_agents(rt, homes)
    serve_grpc(rt, grpc_api.register(grpc_api.HomeServicer(rt.router, rt.bus, homes)))
    return rt


def main() -> None:
    rt = build()
    run_worker(rt.app, rt.settings, rt.bus)
