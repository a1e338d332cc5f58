"""Prevention service composition root: settings -> campaign directory -> kernel runtime
-> gRPC, with the campaign log and the care teams followed beside the partition tasks."""

from __future__ import annotations

from emeuse.kernel.run import KernelRuntime, build_kernel_runtime, run_service
from emeuse.runtime import care_teams
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.settings import settings_or_exit
from services.chronic.care_plan import check_care_plan
from services.prevention import config, grpc_api
from services.prevention.campaigns import Directory, keep_following
from services.prevention.processing import STATES, STEPS, processor


def build() -> tuple[KernelRuntime, Directory]:
    settings = settings_or_exit(config.load)
    directory = Directory()
    rt = build_kernel_runtime(settings.service, processor(directory, settings.delays))
    # A campaign created, approved, paused or ended moves every person's next step.
    directory.listen(lambda: rt.kernel.retime(STEPS))
    return rt, directory


def main() -> None:
    rt, directory = build()
    bootstrap = ",".join(rt.settings.kafka_bootstrap)
    # The teams of the plans chronic accepts, checked by its own function.
    teams = care_teams.CareTeams(accepts=check_care_plan)

    def register(rt: KernelRuntime) -> Registrar:
        return grpc_api.register(
            grpc_api.PreventionServicer(rt.router, rt.bus, rt.table(STATES), directory, teams)
        )

    async def read_campaigns() -> None:
        # Followed until the service stops: the companion is cancelled then.
        await keep_following(directory, bootstrap, lambda: False)

    async def read_care_teams() -> None:
        await care_teams.keep_following(teams, bootstrap)

    run_service(rt, register, (read_campaigns, read_care_teams))
