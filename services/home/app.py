"""Home service composition root: settings -> kernel runtime -> gRPC, with the care teams
followed beside the partition tasks."""

from __future__ import annotations

from emeuse.kernel.run import KernelRuntime, build_kernel_runtime, run_service
from emeuse.runtime import care_teams
from emeuse.runtime.envelope import CODE_OF_TERRITORY
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.settings import settings_or_exit
from services.chronic.care_plan import check_care_plan
from services.home import config, grpc_api
from services.home.metrics import watch
from services.home.processing import HOMES, PROCESSOR


def build() -> KernelRuntime:
    return build_kernel_runtime(settings_or_exit(config.load), PROCESSOR)


def main() -> None:
    rt = build()
    # The teams of the plans chronic accepts, checked by its own function.
    teams = care_teams.CareTeams(accepts=check_care_plan)

    def register(rt: KernelRuntime) -> Registrar:
        watch(tuple(CODE_OF_TERRITORY.values()))
        return grpc_api.register(grpc_api.HomeServicer(rt.router, rt.bus, rt.table(HOMES), teams))

    async def read_care_teams() -> None:
        await care_teams.keep_following(teams, ",".join(rt.settings.kafka_bootstrap))

    run_service(rt, register, (read_care_teams,))
