"""Evaluation service composition root: settings -> kernel runtime -> gRPC."""

from __future__ import annotations

from emeuse.kernel.run import KernelRuntime, build_kernel_runtime, run_service
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.settings import settings_or_exit
from services.evaluation import config, grpc_api
from services.evaluation.processing import CELLS, PROCESSOR


def build() -> KernelRuntime:
    return build_kernel_runtime(settings_or_exit(config.load), PROCESSOR)


def register(rt: KernelRuntime) -> Registrar:
    servicer = grpc_api.EvaluationServicer(rt.router, rt.table(CELLS), rt.settings.service)
    return grpc_api.register(servicer)


def main() -> None:
    run_service(build(), register)
