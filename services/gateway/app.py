"""Gateway composition root: settings -> runtime -> consents table, partner directory,
agents, gRPC."""

from __future__ import annotations

from emeuse.registry import PARTNER_REGISTERED
from emeuse.runtime.follower import keep_following
from emeuse.runtime.service import Runtime, build_runtime, serve_grpc
from emeuse.runtime.worker import run_worker, settings_or_exit
from services.gateway import config, grpc_api
from services.gateway.agents import start_agents
from services.gateway.directory import PartnerDirectory
from services.gateway.tables import declare_tables


def build() -> Runtime:
    rt = build_runtime(settings_or_exit(config.load))
    consents = declare_tables(rt.app)
    directory = PartnerDirectory()
    bootstrap = ",".join(rt.settings.kafka_bootstrap)

    @rt.app.task
    async def read_partners() -> None:
        await keep_following(
            PARTNER_REGISTERED.name,
            PARTNER_REGISTERED.partitions,
            directory.apply,
            directory.ready,
            bootstrap,
            lambda: bool(rt.app.should_stop),
            directory.reloading,
            directory.caught_up,
        )

    start_agents(rt, consents, directory)
    servicer = grpc_api.GatewayServicer(rt.router, rt.bus, consents, directory, bootstrap)
    serve_grpc(rt, grpc_api.register(servicer))
    return rt


def main() -> None:
    rt = build()
    run_worker(rt.app, rt.settings, rt.bus)
