"""Access service composition root: settings -> chronic client, kernel runtime -> gRPC, with
the care teams followed beside the partition tasks."""

from __future__ import annotations

from emeuse.kernel.run import KernelRuntime, build_kernel_runtime, run_service
from emeuse.runtime import care_teams
from emeuse.runtime.envelope import CODE_OF_TERRITORY
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.settings import settings_or_exit
from services.access import config, grpc_api
from services.access.chronic_client import ChronicClient
from services.access.metrics import watch
from services.access.processing import processor
from services.access.state import agenda_tables
from services.chronic.care_plan import check_care_plan


def build() -> KernelRuntime:
    settings = settings_or_exit(config.load)
    chronic = ChronicClient(
        settings.chronic_grpc,
        settings.service.grpc_deadline_seconds,
        tls=settings.service.grpc_tls,
    )
    rt = build_kernel_runtime(settings.service, processor(settings, chronic.care_summary))
    chronic.present(rt.token)
    return rt


def main() -> None:
    rt = build()
    # The teams of the plans chronic accepts, checked by its own function.
    teams = care_teams.CareTeams(accepts=check_care_plan)

    def register(rt: KernelRuntime) -> Registrar:
        watch(tuple(CODE_OF_TERRITORY.values()))
        return grpc_api.register(
            grpc_api.AccessServicer(rt.router, rt.bus, agenda_tables(rt.table), teams)
        )

    async def read_care_teams() -> None:
        await care_teams.keep_following(teams, ",".join(rt.settings.kafka_bootstrap))

    run_service(rt, register, (read_care_teams,))
