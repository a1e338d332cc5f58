"""Home service composition root: settings -> kernel runtime -> gRPC."""

from __future__ import annotations

from emeuse.kernel.run import KernelRuntime, build_kernel_runtime, run_service
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.settings import settings_or_exit
from services.home import config, grpc_api
from services.home.metrics import DEVICES_OFFLINE, OFFLINE
from services.home.processing import HOMES, PROCESSOR


def build() -> KernelRuntime:
    return build_kernel_runtime(settings_or_exit(config.load), PROCESSOR)


def register(rt: KernelRuntime) -> Registrar:
    DEVICES_OFFLINE.set_function(lambda: OFFLINE.held(lambda: set(rt.kernel.tasks)))
    return grpc_api.register(grpc_api.HomeServicer(rt.router, rt.bus, rt.table(HOMES)))


def main() -> None:
    run_service(build(), register)
