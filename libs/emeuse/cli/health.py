"""gRPC health checks of running services (grpc.health.v1), for scripts, tests and operators."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emeuse.cli.environment import tool_channel

CALL_DEADLINE_SECONDS = 1.0


def health_of(target: str) -> str:
    """SERVING, NOT_SERVING, ... or UNREACHABLE (a TLS handshake refused included)."""
    with tool_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(), timeout=CALL_DEADLINE_SECONDS)
        except grpc.RpcError:
            return "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def check_health(targets: list[str], wait_s: float = 0.0) -> dict[str, str]:
    """Health of each target; with wait_s, polls until all are SERVING or time runs out."""
    deadline = time.monotonic() + wait_s
    while True:
        statuses = {target: health_of(target) for target in targets}
        if all(s == "SERVING" for s in statuses.values()) or time.monotonic() >= deadline:
            return statuses
        time.sleep(0.5)
