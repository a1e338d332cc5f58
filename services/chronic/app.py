"""Chronic service composition root: settings -> runtime -> tables, agents, gRPC."""

from __future__ import annotations

from emeuse.runtime.service import Runtime, build_runtime, serve_grpc
from emeuse.runtime.worker import run_worker, settings_or_exit
from services.chronic import config, grpc_api
from services.chronic.agents import start_agents
from services.chronic.tables import declare_tables


def build() -> Runtime:
    rt = build_runtime(settings_or_exit(config.load))
    care_plans, states = declare_tables(rt.app)
    start_agents(rt, care_plans, states)
    serve_grpc(
        rt, grpc_api.register(grpc_api.ChronicServicer(rt.router, rt.bus, care_plans, states))
    )
    return rt


def main() -> None:
    rt = build()
    run_worker(rt.app, rt.settings, rt.bus)
