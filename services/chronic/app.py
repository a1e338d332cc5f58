"""Chronic service composition root: settings -> kernel runtime -> gRPC."""

from __future__ import annotations

from emeuse.kernel.run import KernelRuntime, build_kernel_runtime, run_service
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.settings import settings_or_exit
from services.chronic import config, grpc_api
from services.chronic.domain import ucum
from services.chronic.processing import CARE_PLANS, PROCESSOR, STATES


def build() -> KernelRuntime:
    runtime = build_kernel_runtime(settings_or_exit(config.load), PROCESSOR)
    ucum.load()
    return runtime


def register(rt: KernelRuntime) -> Registrar:
    return grpc_api.register(
        grpc_api.ChronicServicer(rt.router, rt.bus, rt.table(CARE_PLANS), rt.table(STATES))
    )


def main() -> None:
    run_service(build(), register)
