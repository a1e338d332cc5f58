"""Prevention service composition root: settings -> runtime -> table, campaign directory,
agents, gRPC."""

from __future__ import annotations

from emeuse.runtime.service import Runtime, build_runtime, serve_grpc
from emeuse.runtime.worker import run_worker, settings_or_exit
from services.prevention import config, grpc_api
from services.prevention.agents import start_agents
from services.prevention.campaigns import Directory, keep_following
from services.prevention.tables import declare_tables


def build() -> Runtime:
    settings = settings_or_exit(config.load)
    rt = build_runtime(settings.service)
    states = declare_tables(rt.app)
    directory = Directory()
    bootstrap = ",".join(settings.service.kafka_bootstrap)

    @rt.app.task
    async def read_campaigns() -> None:
        await keep_following(directory, bootstrap, lambda: bool(rt.app.should_stop))

    start_agents(rt, states, directory, settings.delays)
    servicer = grpc_api.PreventionServicer(rt.router, rt.bus, states, directory)
    serve_grpc(rt, grpc_api.register(servicer))
    return rt


def main() -> None:
    rt = build()
    run_worker(rt.app, rt.settings, rt.bus)
