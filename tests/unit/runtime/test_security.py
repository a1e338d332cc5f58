"""Security settings, the Kafka client kwargs built from them, scripts/certs.sh's files and
gRPC TLS between a server and its clients (in process, no broker)."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from aiokafka.client import AIOKafkaClient
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from emeuse.cli import platform_users
from emeuse.cli.errors import CliError
from emeuse.registry import SERVICES
from emeuse.runtime.grpc_tls import bind, certificate_expiry, open_aio_channel
from emeuse.runtime.kafka_clients import check_login, client_options
from emeuse.runtime.security import (
    LOOPBACK_PLAINTEXT,
    NO_TLS,
    PLAINTEXT,
    GrpcTls,
    load_grpc_tls,
    load_kafka_login,
)
from emeuse.runtime.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[3]
DAY = 86400


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    made = subprocess.run(
        [str(ROOT / "scripts" / "certs.sh")],
        env=os.environ | {"SECRETS_DIR": str(folder), "CERT_DAYS": "30"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return folder


def tls_env(secrets: Path, mode: str = "mtls") -> dict[str, str]:
    tls = secrets / "tls"
    return {
        "EMEUSE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "EMEUSE_GRPC_TLS": mode,
        "EMEUSE_TLS_CA_FILE": str(tls / "ca.crt"),
        "EMEUSE_CHRONIC_TLS_CERT_FILE": str(tls / "chronic.crt"),
        "EMEUSE_CHRONIC_TLS_KEY_FILE": str(tls / "chronic.key"),
        "EMEUSE_CLI_TLS_CERT_FILE": str(tls / "cli.crt"),
        "EMEUSE_CLI_TLS_KEY_FILE": str(tls / "cli.key"),
    }


def sasl_env(secrets: Path, party: str = "chronic") -> dict[str, str]:
    return {
        "EMEUSE_GRPC_TLS": "off",
        "EMEUSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EMEUSE_TLS_CA_FILE": str(secrets / "tls" / "ca.crt"),
        f"EMEUSE_{party.upper()}_KAFKA_PASSWORD_FILE": str(
            secrets / "kafka" / f"emeuse-{party}.password"
        ),
    }


def files_only(secrets: Path, party: str = "chronic") -> dict[str, str]:
    """Where certs.sh put the party's files, and no choice of mode or protocol."""
    tls = secrets / "tls"
    return {
        "EMEUSE_TLS_CA_FILE": str(tls / "ca.crt"),
        f"EMEUSE_{party.upper()}_TLS_CERT_FILE": str(tls / f"{party}.crt"),
        f"EMEUSE_{party.upper()}_TLS_KEY_FILE": str(tls / f"{party}.key"),
        f"EMEUSE_{party.upper()}_KAFKA_PASSWORD_FILE": str(
            secrets / "kafka" / f"emeuse-{party}.password"
        ),
    }


def test_by_default_a_service_serves_mutual_tls_and_logs_in_over_sasl_ssl(secrets: Path) -> None:
    settings = load_settings("chronic", files_only(secrets))
    assert settings.grpc_tls.on and settings.grpc_tls.mutual
    assert settings.grpc_tls.cert_file == secrets / "tls" / "chronic.crt"
    assert settings.kafka_login.secured and settings.kafka_login.username == "emeuse-chronic"
    # The local broker's SASL_SSL listener, not the loopback PLAINTEXT one.
    assert settings.kafka_bootstrap == ("127.0.0.1:9095",)
    assert settings.kafka_options()["security_protocol"] == "SASL_SSL"


def test_by_default_the_tools_present_their_certificate_and_log_in_as_emeuse_cli(
    secrets: Path,
) -> None:
    env = files_only(secrets, "cli")
    assert load_grpc_tls("cli", env).mutual
    assert load_kafka_login("cli", env).username == "emeuse-cli"


def test_without_certificates_the_default_stops_at_start_rather_than_run_plaintext(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .local/secrets here
    with pytest.raises(SettingsError, match=r"no such file \(make them with scripts/certs.sh\)"):
        load_settings("chronic", {})
    with pytest.raises(SettingsError, match=r"EMEUSE_TLS_CA_FILE=.*no such file"):
        load_grpc_tls("cli", {})


def test_plaintext_only_when_chosen_and_then_on_the_loopback_listener() -> None:
    settings = load_settings("chronic", LOOPBACK_PLAINTEXT)
    assert settings.grpc_tls == NO_TLS and not settings.grpc_tls.on
    assert settings.kafka_login == PLAINTEXT
    assert settings.kafka_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.kafka_bootstrap == ("127.0.0.1:9092",)


def test_an_unknown_grpc_tls_mode_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="EMEUSE_GRPC_TLS='on'"):
        load_grpc_tls("chronic", {"EMEUSE_GRPC_TLS": "on"})


def test_an_unknown_kafka_protocol_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="EMEUSE_KAFKA_SECURITY_PROTOCOL='SSL'"):
        load_kafka_login("chronic", {"EMEUSE_KAFKA_SECURITY_PROTOCOL": "SSL"})


def test_tls_without_the_services_certificate_stops_at_start_naming_its_variable(
    secrets: Path, tmp_path: Path
) -> None:
    env = tls_env(secrets) | {"EMEUSE_CHRONIC_TLS_CERT_FILE": str(tmp_path / "none.crt")}
    with pytest.raises(SettingsError, match=r"EMEUSE_CHRONIC_TLS_CERT_FILE=.*no such file"):
        load_settings("chronic", env)


def test_each_party_reads_its_own_certificate_and_the_tools_are_party_cli(secrets: Path) -> None:
    service = load_settings("chronic", tls_env(secrets)).grpc_tls
    tools = load_grpc_tls("cli", tls_env(secrets))
    assert service.mutual and tools.mutual
    assert service.cert_file == secrets / "tls" / "chronic.crt"
    assert tools.cert_file == secrets / "tls" / "cli.crt"
    assert service.ca_file == tools.ca_file == secrets / "tls" / "ca.crt"


def test_sasl_ssl_logs_in_as_the_services_own_scram_user_with_a_checked_certificate(
    secrets: Path,
) -> None:
    settings = load_settings("chronic", sasl_env(secrets))
    password = (secrets / "kafka" / "emeuse-chronic.password").read_text().strip()
    options = settings.kafka_options()
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "emeuse-chronic",
        "sasl_plain_password": password,
    }
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert password not in repr(settings.kafka_login)


def test_under_sasl_ssl_an_app_id_outside_the_services_acls_is_refused_at_start(
    secrets: Path,
) -> None:
    # Its own names (emeuse-chronic, emeuse-chronic-…) are what its ACLs grant.
    for own in ("emeuse-chronic", "emeuse-chronic-blue"):
        env = sasl_env(secrets) | {"EMEUSE_CHRONIC_APP_ID": own}
        assert load_settings("chronic", env).app_id == own
    env = sasl_env(secrets) | {"EMEUSE_CHRONIC_APP_ID": "chronic-blue"}
    with pytest.raises(
        SettingsError, match=r"EMEUSE_CHRONIC_APP_ID='chronic-blue'.*emeuse-chronic-"
    ):
        load_settings("chronic", env)
    # On the loopback listener (no ACLs) any app id still does, as the tests use.
    loopback = LOOPBACK_PLAINTEXT | {"EMEUSE_CHRONIC_APP_ID": "chronic-blue"}
    assert load_settings("chronic", loopback).app_id


def test_the_tools_log_in_as_emeuse_cli_unless_told_another_user(secrets: Path) -> None:
    assert load_kafka_login("cli", sasl_env(secrets, "cli")).username == "emeuse-cli"
    env = sasl_env(secrets, "cli") | {"EMEUSE_CLI_KAFKA_USER": "ops-anna"}
    assert load_kafka_login("cli", env).username == "ops-anna"


def test_an_empty_password_file_is_refused_naming_its_variable(
    secrets: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.password"
    empty.write_text("\n")
    env = sasl_env(secrets) | {"EMEUSE_CHRONIC_KAFKA_PASSWORD_FILE": str(empty)}
    with pytest.raises(SettingsError, match=r"EMEUSE_CHRONIC_KAFKA_PASSWORD_FILE=.*empty"):
        load_kafka_login("chronic", env)


def test_aiokafka_takes_the_options_as_they_are(secrets: Path) -> None:
    options = client_options(load_kafka_login("chronic", sasl_env(secrets)))

    async def construct() -> AIOKafkaClient:
        return AIOKafkaClient(bootstrap_servers="127.0.0.1:9", **options)

    client = asyncio.run(construct())
    assert client._security_protocol == "SASL_SSL"


def test_certs_sh_makes_a_key_matching_each_certificate_signed_by_the_ca(secrets: Path) -> None:
    tls = secrets / "tls"
    for party in ("chronic", "cli", "kafka"):
        context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
        context.load_cert_chain(tls / f"{party}.crt", tls / f"{party}.key")
        assert (tls / f"{party}.key").stat().st_mode & 0o077 == 0
    expires_in = certificate_expiry(tls / "chronic.crt") - time.time()
    assert 29 * DAY < expires_in <= 30 * DAY
    assert certificate_expiry(tls / "ca.crt") > certificate_expiry(tls / "chronic.crt")


def _serve_and_ask(server_tls: GrpcTls, client_tls: GrpcTls) -> str:
    async def run() -> str:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = bind(server, "127.0.0.1:0", server_tls)
        await server.start()
        try:
            async with open_aio_channel(f"127.0.0.1:{port}", client_tls) as channel:
                answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=3
                )
                return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        finally:
            await server.stop(None)

    return asyncio.run(run())


def test_under_mtls_a_client_without_a_certificate_is_refused(secrets: Path) -> None:
    server = load_grpc_tls("chronic", tls_env(secrets))
    tools = load_grpc_tls("cli", tls_env(secrets))
    only_trusting = GrpcTls("tls", tools.ca_file)
    assert _serve_and_ask(server, tools) == "SERVING"
    assert _serve_and_ask(server, only_trusting) == "UNAVAILABLE"
    assert _serve_and_ask(server, NO_TLS) == "UNAVAILABLE"


def test_under_tls_any_client_trusting_the_ca_is_answered(secrets: Path) -> None:
    server = load_grpc_tls("chronic", tls_env(secrets, "tls"))
    client = load_grpc_tls("cli", tls_env(secrets, "tls"))
    assert _serve_and_ask(server, client) == "SERVING"


def test_a_broker_not_answering_yet_is_left_to_the_topic_wait(secrets: Path) -> None:
    login = load_kafka_login("chronic", sasl_env(secrets))
    # Nothing listens on port 9: no refusal to report, the start goes on and waits for topics.
    assert asyncio.run(check_login(["127.0.0.1:9"], login, timeout_s=2)) is None


def test_kafka_sh_is_told_which_password_file_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CliError, match=r"emeuse-prevention\.password: no password"):
        platform_users.passwords(tmp_path)


def test_certs_sh_gives_every_registry_service_a_certificate_and_a_kafka_user(
    secrets: Path,
) -> None:
    for service in SERVICES:
        assert (secrets / "tls" / f"{service}.crt").is_file(), service
        assert (secrets / "kafka" / f"emeuse-{service}.password").is_file(), service
