"""Gateway composition root: settings -> partner directory -> kernel runtime -> gRPC, with
the partner registry, the consents and the care teams followed and the partners' inbound
events admitted beside the partition tasks."""

from __future__ import annotations

from emeuse.kernel.run import KernelRuntime, build_kernel_runtime, run_service
from emeuse.registry import PARTNER_REGISTERED
from emeuse.runtime import care_teams
from emeuse.runtime.follower import keep_following
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.settings import settings_or_exit
from services.chronic.care_plan import check_care_plan
from services.chronic.domain import ucum
from services.gateway import config, grpc_api
from services.gateway.admission import keep_admitting
from services.gateway.consent_follower import FollowedConsents, keep_following_consents
from services.gateway.directory import PartnerDirectory
from services.gateway.processing import CONSENTS, processor


def build() -> tuple[KernelRuntime, PartnerDirectory]:
    directory = PartnerDirectory()
    runtime = build_kernel_runtime(settings_or_exit(config.load), processor(directory))
    # Chronic's unit rules (domain_rules) need the UCUM registry: built now, as chronic does,
    # not on the loop by the first reading in an unusual unit (1 s here, 6 to 12 s on a
    # loaded machine: every refusal, feed and heartbeat waited, and the groups expired).
    ucum.load()
    return runtime, directory


def main() -> None:
    rt, directory = build()
    bootstrap = ",".join(rt.settings.kafka_bootstrap)

    # Where each patient is followed (a coordinator's consents), from the plans chronic
    # accepts, checked by its own function.
    teams = care_teams.CareTeams(accepts=check_care_plan)

    def register(rt: KernelRuntime) -> Registrar:
        return grpc_api.register(
            grpc_api.GatewayServicer(
                rt.router, rt.bus, rt.table(CONSENTS), directory, bootstrap, teams, rt.audit
            )
        )

    consents = FollowedConsents()

    # All four run until the service stops: companions are cancelled then.
    async def read_partners() -> None:
        await keep_following(
            PARTNER_REGISTERED.name,
            PARTNER_REGISTERED.partitions,
            directory.apply,
            directory.ready,
            bootstrap,
            lambda: False,
            directory.reloading,
            directory.caught_up,
        )

    async def read_consents() -> None:
        await keep_following_consents(consents, bootstrap)

    async def admit_inbound() -> None:
        await keep_admitting(rt.bus, directory, consents, bootstrap)

    async def read_care_teams() -> None:
        await care_teams.keep_following(teams, bootstrap)

    run_service(rt, register, (read_partners, read_consents, admit_inbound, read_care_teams))
