"""Prevention service composition root: settings -> runtime -> table, agents, gRPC."""

from __future__ import annotations

from emeuse.runtime.service import Runtime, build_runtime, serve_grpc
from emeuse.runtime.worker import run_worker, settings_or_exit
from services.prevention import config, grpc_api
from services.prevention.agents import start_agents
from services.prevention.tables import declare_tables


def build() -> Runtime:
    rt = build_runtime(settings_or_exit(config.load))
    schedules = declare_tables(rt.app)
    start_agents(rt, schedules)
    serve_grpc(rt, grpc_api.register(grpc_api.PreventionServicer(rt.router, schedules)))
    return rt


def main() -> None:
    rt = build()
    run_worker(rt.app, rt.settings)
