"""Access service composition root: settings -> runtime -> tables, chronic client, agents, gRPC."""

from __future__ import annotations

from emeuse.runtime.service import Runtime, build_runtime, serve_grpc
from emeuse.runtime.worker import run_worker, settings_or_exit
from services.access import config, grpc_api
from services.access.agents import start_agents
from services.access.chronic_client import ChronicClient
from services.access.tables import declare_tables


def build() -> Runtime:
    settings = settings_or_exit(config.load)
    rt = build_runtime(settings.service)
    tables = declare_tables(rt.app)
    chronic = ChronicClient(settings.chronic_grpc, settings.service.grpc_deadline_seconds, rt.token)
    start_agents(rt, tables, chronic, settings)
    serve_grpc(rt, grpc_api.register(grpc_api.AccessServicer(rt.router, rt.bus, tables)))
    return rt


def main() -> None:
    rt = build()
    run_worker(rt.app, rt.settings, rt.bus)
