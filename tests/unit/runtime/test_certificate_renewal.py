"""Certificates renewed on disk are taken without a restart: when the files change, a pair
that matches replaces the one in use, a half-written or broken one is logged and the one in
use kept; a gRPC server serves the renewed certificate to new connections, and services'
channels present the renewed one (in process, no broker)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from emeuse.runtime.certificates import (
    CertificateError,
    CertificateFiles,
    Certificates,
    certificate_expiry,
    read_certificates,
)
from emeuse.runtime.grpc_tls import PeerChannels, bind
from emeuse.runtime.security import GrpcTls

ROOT = Path(__file__).resolve().parents[3]
DAY = 86400
PEER_CERTIFICATE = "/test.Peer/Certificate"


def certs_sh(secrets: Path, *args: str, days: int) -> None:
    made = subprocess.run(
        [str(ROOT / "scripts" / "certs.sh"), *args],
        env=os.environ | {"SECRETS_DIR": str(secrets), "CERT_DAYS": str(days)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Certificates valid 30 days, and the same renewed for 90 days by the same CA."""
    first = tmp_path_factory.mktemp("first")
    certs_sh(first, days=30)
    renewed = tmp_path_factory.mktemp("renewed")
    shutil.copytree(first, renewed, dirs_exist_ok=True)
    certs_sh(renewed, "renew", days=90)
    return first / "tls", renewed / "tls"


@pytest.fixture
def tls_dir(made: tuple[Path, Path], tmp_path: Path) -> Path:
    shutil.copytree(made[0], tmp_path / "tls")
    return tmp_path / "tls"


def party(tls: Path, name: str, mode: str = "mtls") -> GrpcTls:
    return GrpcTls(mode, tls / "ca.crt", tls / f"{name}.crt", tls / f"{name}.key")


def renew(
    tls: Path, made: tuple[Path, Path], name: str, files: tuple[str, ...] = ("key", "crt")
) -> None:
    # Written aside then renamed over, as certs.sh does: each file whole, one after the other.
    for suffix in files:
        aside = tls / f".{name}.{suffix}.new"
        shutil.copyfile(made[1] / f"{name}.{suffix}", aside)
        aside.replace(tls / f"{name}.{suffix}")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def days_left(certificates: Certificates) -> float:
    assert certificates.expires is not None
    return (certificates.expires - time.time()) / DAY


def test_unchanged_files_are_not_read_again(tls_dir: Path) -> None:
    clock = Clock()
    files = CertificateFiles(party(tls_dir, "chronic"), recheck_s=1, clock=clock)
    clock.now += 5
    assert files.renewed() is None
    assert 29 < days_left(files.current) <= 30


def test_a_renewed_pair_replaces_the_one_in_use_at_the_next_look(
    tls_dir: Path, made: tuple[Path, Path]
) -> None:
    clock = Clock()
    files = CertificateFiles(party(tls_dir, "chronic"), recheck_s=1, clock=clock)
    renew(tls_dir, made, "chronic")
    assert files.renewed() is None  # looked at less than a second ago
    clock.now += 1
    renewed = files.renewed()
    assert renewed is not None and renewed == files.current
    assert 89 < days_left(renewed) <= 90
    assert renewed.chain == (made[1] / "chronic.crt").read_bytes()
    clock.now += 1
    assert files.renewed() is None  # taken once


def test_a_new_key_beside_the_old_certificate_keeps_the_pair_in_use_until_both_are_there(
    tls_dir: Path, made: tuple[Path, Path]
) -> None:
    clock = Clock()
    files = CertificateFiles(party(tls_dir, "chronic"), recheck_s=1, clock=clock)
    before = files.current
    renew(tls_dir, made, "chronic", ("key",))
    clock.now += 1
    with capture_logs() as logs:
        assert files.renewed() is None
    assert files.current == before
    [unreadable] = [e for e in logs if e["event"] == "tls.certificates_unreadable"]
    assert "KEY_VALUES_MISMATCH" in unreadable["error"]
    assert "PRIVATE KEY" not in unreadable["error"]  # names the files, not what they hold
    renew(tls_dir, made, "chronic", ("crt",))
    clock.now += 1
    renewed = files.renewed()
    assert renewed is not None and 89 < days_left(renewed) <= 90


def test_a_certificate_file_cut_short_keeps_the_one_in_use(tls_dir: Path) -> None:
    clock = Clock()
    files = CertificateFiles(party(tls_dir, "chronic"), recheck_s=1, clock=clock)
    before = files.current
    certificate = tls_dir / "chronic.crt"
    certificate.write_bytes(certificate.read_bytes()[:100])
    clock.now += 1
    with capture_logs() as logs:
        assert files.renewed() is None
    assert files.current == before
    assert [e["event"] for e in logs] == ["tls.certificates_unreadable"]


def test_a_mismatched_pair_at_start_is_refused_naming_its_files(
    tls_dir: Path, made: tuple[Path, Path]
) -> None:
    renew(tls_dir, made, "chronic", ("key",))
    with pytest.raises(CertificateError, match=r"chronic\.key.*KEY_VALUES_MISMATCH"):
        read_certificates(party(tls_dir, "chronic"))


def test_a_client_without_a_certificate_of_its_own_follows_the_ca_alone(tls_dir: Path) -> None:
    files = CertificateFiles(GrpcTls("tls", tls_dir / "ca.crt"), own=False)
    assert files.current.key is None and files.current.chain is None
    assert files.current.ca_expires == certificate_expiry(tls_dir / "ca.crt")


def served_certificate(port: int, client: GrpcTls) -> dict[str, object]:
    """The certificate a new connection is shown, with the client's own presented."""
    assert client.ca_file and client.cert_file and client.key_file
    context = ssl.create_default_context(cafile=str(client.ca_file))
    context.load_cert_chain(client.cert_file, client.key_file)
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        return conn.getpeercert()


async def _peer_certificate(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    # The client certificate the server saw on this call's connection.
    return context.auth_context()["x509_pem_cert"][0]


def _server() -> grpc.aio.Server:
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(_peer_certificate)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("test.Peer", {"Certificate": handler})]
    )
    return server


def test_a_server_serves_the_renewed_certificate_to_new_connections_without_a_restart(
    tls_dir: Path, made: tuple[Path, Path]
) -> None:
    tools = party(tls_dir, "cli")
    renewals: list[Certificates] = []

    async def run() -> list[str]:
        server = _server()
        files = CertificateFiles(party(tls_dir, "chronic"), recheck_s=0, taken=renewals.append)
        port = bind(server, "127.0.0.1:0", files.tls, files)
        await server.start()
        try:
            before = await asyncio.to_thread(served_certificate, port, tools)
            async with grpc.aio.secure_channel(
                f"127.0.0.1:{port}",
                grpc.ssl_channel_credentials(
                    (tls_dir / "ca.crt").read_bytes(),
                    (tls_dir / "cli.key").read_bytes(),
                    (tls_dir / "cli.crt").read_bytes(),
                ),
            ) as channel:
                await channel.unary_unary(PEER_CERTIFICATE)(b"", timeout=5)
                renew(tls_dir, made, "chronic", ("key",))  # half-written: the old one served
                half = await asyncio.to_thread(served_certificate, port, tools)
                renew(tls_dir, made, "chronic", ("crt",))
                # Taken by another look (the service's gauge keeper): served all the same.
                assert files.renewed() is not None
                after = await asyncio.to_thread(served_certificate, port, tools)
                # The connection opened before goes on with the old certificate.
                await channel.unary_unary(PEER_CERTIFICATE)(b"", timeout=5)
            return [str(c["notAfter"]) for c in (before, half, after)]
        finally:
            await server.stop(None)

    before, half, after = asyncio.run(run())
    assert half == before
    expected = made[1] / "chronic.crt"
    assert ssl.cert_time_to_seconds(after) == certificate_expiry(expected)
    assert ssl.cert_time_to_seconds(after) > ssl.cert_time_to_seconds(before) + 59 * DAY
    assert [r.expires for r in renewals] == [certificate_expiry(expected)]


def test_a_services_channels_present_the_renewed_certificate_once_the_files_change(
    tls_dir: Path, made: tuple[Path, Path]
) -> None:
    clock = Clock()

    async def run() -> tuple[bytes, bytes, bool, grpc.ChannelConnectivity]:
        server = _server()
        port = bind(server, "127.0.0.1:0", party(tls_dir, "chronic"))
        await server.start()
        channels = PeerChannels(party(tls_dir, "access"), grace_s=1, recheck_s=5, clock=clock)
        target = f"127.0.0.1:{port}"
        try:
            old = channels.get(target)
            first = await old.unary_unary(PEER_CERTIFICATE)(b"", timeout=5)
            renew(tls_dir, made, "access")
            clock.now += 1
            unchanged = channels.get(target) is old  # not looked at again within 5 s
            clock.now += 5
            new = channels.get(target)
            second = await new.unary_unary(PEER_CERTIFICATE)(b"", timeout=5)
            await asyncio.sleep(0.2)
            return first, second, unchanged and new is not old, old.get_state()
        finally:
            await channels.close()
            await server.stop(None)

    first, second, replaced, old_state = asyncio.run(run())
    assert first == (made[0] / "access.crt").read_bytes()
    assert second == (made[1] / "access.crt").read_bytes()
    assert replaced
    assert old_state == grpc.ChannelConnectivity.SHUTDOWN
