"""A renewed Kafka CA is trusted without a restart: the TLS context the process's Kafka
clients were given, made from CA A, verifies a broker certificate of CA B once the CA file
holds B too, and still verifies A's (both hold during a renewal's overlap); a CA file caught
half-written adds nothing and is logged. Brokers stand in as local TLS servers presenting
the `kafka` certificate scripts/certs.sh makes; no broker."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from emeuse.runtime.kafka_clients import client_options
from emeuse.runtime.kafka_trust import FollowedCaContext
from emeuse.runtime.security import KafkaLogin

ROOT = Path(__file__).resolve().parents[3]


def certs_sh(secrets: Path) -> Path:
    made = subprocess.run(
        [str(ROOT / "scripts" / "certs.sh")],
        env=os.environ | {"SECRETS_DIR": str(secrets)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return secrets / "tls"


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two CAs, A and B, each with a broker certificate for localhost, as `make up` makes."""
    return certs_sh(tmp_path_factory.mktemp("a")), certs_sh(tmp_path_factory.mktemp("b"))


def replace(path: Path, text: str) -> None:
    """Written aside and renamed over the file, as the kubelet updates a mounted Secret."""
    aside = path.with_suffix(".new")
    aside.write_text(text)
    aside.replace(path)


async def handshake_async(port: int, context: ssl.SSLContext) -> str:
    """As aiokafka connects: asyncio's transport over the context (wrap_bio)."""
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
    except ssl.SSLCertVerificationError as exc:
        return exc.verify_message
    writer.close()
    return "verified"


def handshake_socket(port: int, context: ssl.SSLContext) -> str:
    """As kafka-python connects: a socket the context wraps."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost"):
                return "verified"
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_message


async def handshake(client: str, port: int, context: ssl.SSLContext) -> str:
    if client == "aiokafka":
        return await handshake_async(port, context)
    return await asyncio.to_thread(handshake_socket, port, context)


async def with_brokers(
    tls_dirs: tuple[Path, ...], run: Callable[[list[int]], Coroutine[Any, Any, None]]
) -> None:
    """A TLS server per folder, presenting its `kafka` certificate, for the length of `run`."""
    servers = []
    for tls in tls_dirs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls / "kafka.crt", tls / "kafka.key")

        async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        servers.append(await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context))
    try:
        await run([server.sockets[0].getsockname()[1] for server in servers])
    finally:
        for server in servers:
            server.close()


@pytest.mark.parametrize("client", ["aiokafka", "kafka-python"])
def test_a_ca_added_to_the_kafka_ca_file_is_trusted_by_clients_already_made(
    cas: tuple[Path, Path], tmp_path: Path, client: str
) -> None:
    a, b = cas
    ca_file = tmp_path / "ca.crt"
    replace(ca_file, (a / "ca.crt").read_text())
    login = KafkaLogin("SASL_SSL", ca_file, "emeuse-chronic", "secret")
    context = client_options(login)["ssl_context"]
    seen: dict[str, str] = {}

    async def run(ports: list[int]) -> None:
        broker_a, broker_b = ports
        seen["B, before"] = await handshake(client, broker_b, context)
        replace(ca_file, (b / "ca.crt").read_text() + (a / "ca.crt").read_text())
        await asyncio.sleep(1.1)  # the file is looked at at most once a second
        seen["B, after"] = await handshake(client, broker_b, context)
        seen["A, after"] = await handshake(client, broker_a, context)

    asyncio.run(with_brokers((a, b), run))
    assert seen == {
        "B, before": "unable to get local issuer certificate",
        "B, after": "verified",
        "A, after": "verified",
    }
    # One context per CA file and process: every client made later shares it.
    assert client_options(login)["ssl_context"] is context


def test_the_old_ca_stays_trusted_when_the_file_holds_the_new_one_alone(
    cas: tuple[Path, Path], tmp_path: Path
) -> None:
    """Strimzi's renewed ca.crt holds the new CA only; brokers still on the old one answer."""
    a, b = cas
    ca_file = tmp_path / "ca.crt"
    replace(ca_file, (a / "ca.crt").read_text())
    now = [0.0]
    context = FollowedCaContext(ca_file, clock=lambda: now[0])
    seen: list[str] = []

    async def run(ports: list[int]) -> None:
        replace(ca_file, (b / "ca.crt").read_text())
        now[0] += 1.0
        seen.extend([await handshake_async(port, context) for port in ports])

    asyncio.run(with_brokers((a, b), run))
    assert seen == ["verified", "verified"]


def test_a_ca_file_caught_half_written_adds_nothing_until_it_is_whole(
    cas: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = cas
    ca_file = tmp_path / "ca.crt"
    replace(ca_file, (a / "ca.crt").read_text())
    now = [0.0]
    context = FollowedCaContext(ca_file, clock=lambda: now[0])
    whole = (b / "ca.crt").read_text() + (a / "ca.crt").read_text()
    seen: dict[str, str] = {}

    async def run(ports: list[int]) -> None:
        broker_a, broker_b = ports
        replace(ca_file, whole[: len(whole) // 3])
        now[0] += 0.5
        assert not context.follow()  # looked at once a second at most: not yet
        now[0] += 0.5
        with capture_logs() as logs:
            assert not context.follow()
        seen["logged"] = " ".join(f"{e['event']}:{Path(e['file']).name}" for e in logs)
        seen["B, cut"] = await handshake_async(broker_b, context)
        seen["A, cut"] = await handshake_async(broker_a, context)
        replace(ca_file, whole)
        now[0] += 1.0
        seen["B, whole"] = await handshake_async(broker_b, context)

    asyncio.run(with_brokers((a, b), run))
    assert seen == {
        "logged": "kafka.ca_unreadable:ca.crt",
        "B, cut": "unable to get local issuer certificate",
        "A, cut": "verified",
        "B, whole": "verified",
    }


def test_a_missing_ca_file_fails_the_first_client_as_before(tmp_path: Path) -> None:
    login = KafkaLogin("SASL_SSL", tmp_path / "absent.crt", "emeuse-chronic", "secret")
    with pytest.raises(FileNotFoundError):
        client_options(login)
