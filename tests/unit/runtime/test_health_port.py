"""The plaintext health-only port (EMEUSE_<SERVICE>_HEALTH_PORT) that Kubernetes' gRPC
probes use while the service's own port requires mutual TLS: it answers health and nothing
else (in process, no broker)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from emeuse.runtime.audit import AuditTrail
from emeuse.runtime.grpc_server import GrpcServer
from emeuse.runtime.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    made = subprocess.run(
        [str(ROOT / "scripts" / "certs.sh")],
        env=os.environ | {"SECRETS_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    (folder / "grpc-callers").write_text(f"operator {'ab' * 32} operator\n")
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mtls_env(secrets: Path, **more: str) -> dict[str, str]:
    tls = secrets / "tls"
    return {
        "EMEUSE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "EMEUSE_GRPC_TLS": "mtls",
        "EMEUSE_TLS_CA_FILE": str(tls / "ca.crt"),
        "EMEUSE_CHRONIC_TLS_CERT_FILE": str(tls / "chronic.crt"),
        "EMEUSE_CHRONIC_TLS_KEY_FILE": str(tls / "chronic.key"),
        "EMEUSE_GRPC_CALLERS_FILE": str(secrets / "grpc-callers"),
        **more,
    }


async def _ask(port: int) -> str:
    """Health over plaintext, as kubelet asks: the status, or the call's error code."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


async def _reflect(port: int) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        try:
            async for _ in reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([request]), timeout=3
            ):
                return "ANSWERED"
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
    return "NOTHING"


def test_probes_get_health_in_plaintext_while_the_api_port_requires_mutual_tls(
    secrets: Path,
) -> None:
    grpc_port, health_port = free_port(), free_port()
    env = mtls_env(
        secrets,
        EMEUSE_CHRONIC_GRPC_PORT=str(grpc_port),
        EMEUSE_CHRONIC_HEALTH_PORT=str(health_port),
    )
    settings = load_settings("chronic", env)
    assert settings.health_port == health_port

    async def run() -> dict[str, str]:
        async def send(records: list[object]) -> None:
            return None

        server = GrpcServer(settings, lambda _: [], {}, audit=AuditTrail(settings, send=send))
        await server.start()
        try:
            seen = {
                "health port": await _ask(health_port),
                "health port reflection": await _reflect(health_port),
                "api port in plaintext": await _ask(grpc_port),
            }
        finally:
            await server.stop()
        seen["health port after stop"] = await _ask(health_port)
        return seen

    assert asyncio.run(run()) == {
        "health port": "SERVING",
        # Nothing but health: no reflection (nor any API) without TLS.
        "health port reflection": "UNIMPLEMENTED",
        "api port in plaintext": "UNAVAILABLE",
        "health port after stop": "UNAVAILABLE",
    }


def test_no_health_port_unless_set_and_never_the_grpc_or_metrics_port(secrets: Path) -> None:
    assert load_settings("chronic", mtls_env(secrets)).health_port == 0
    for taken in ("50052", "9102"):
        with pytest.raises(SettingsError, match=rf"EMEUSE_CHRONIC_HEALTH_PORT='{taken}'"):
            load_settings("chronic", mtls_env(secrets, EMEUSE_CHRONIC_HEALTH_PORT=taken))
    with pytest.raises(SettingsError, match="not a port number"):
        load_settings("chronic", mtls_env(secrets, EMEUSE_CHRONIC_HEALTH_PORT="probe"))
