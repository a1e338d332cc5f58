"""Coordination service composition root: settings -> kernel runtime -> gRPC."""

from __future__ import annotations

from emeuse.kernel.run import KernelRuntime, build_kernel_runtime, run_service
from emeuse.runtime.envelope import CODE_OF_TERRITORY
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.settings import settings_or_exit
from services.coordination import config, grpc_api
from services.coordination.metrics import watch
from services.coordination.processing import PROCESSOR, TIMELINES, WITH_PROBLEMS


def build() -> KernelRuntime:
    return build_kernel_runtime(settings_or_exit(config.load), PROCESSOR)


def register(rt: KernelRuntime) -> Registrar:
    watch(tuple(CODE_OF_TERRITORY.values()))
    servicer = grpc_api.CoordinationServicer(
        rt.router, rt.table(TIMELINES), rt.table(WITH_PROBLEMS)
    )
    return grpc_api.register(servicer)


def main() -> None:
    run_service(build(), register)
