"""/metrics over HTTPS: the settings' default, the server in process (a scraper with the
CA and Prometheus's certificate, plain HTTP and strangers refused, a renewed certificate
served without a restart)."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import pytest

from emeuse.runtime.metrics import GRPC_REQUESTS
from emeuse.runtime.metrics_server import serve_metrics
from emeuse.runtime.security import (
    LOOPBACK_PLAINTEXT,
    NO_TLS,
    SCRAPER,
    GrpcTls,
    load_metrics_tls,
)
from emeuse.runtime.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[3]


def certs_sh(secrets: Path, *args: str, days: int = 30) -> None:
    made = subprocess.run(
        [str(ROOT / "scripts" / "certs.sh"), *args],
        env=os.environ | {"SECRETS_DIR": str(secrets), "CERT_DAYS": str(days)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    certs_sh(folder)
    return folder


def files_of(secrets: Path, party: str = "chronic") -> dict[str, str]:
    """Where certs.sh put the party's files, and no choice of mode."""
    tls = secrets / "tls"
    return {
        "EMEUSE_TLS_CA_FILE": str(tls / "ca.crt"),
        f"EMEUSE_{party.upper()}_TLS_CERT_FILE": str(tls / f"{party}.crt"),
        f"EMEUSE_{party.upper()}_TLS_KEY_FILE": str(tls / f"{party}.key"),
        "EMEUSE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    }


def service_tls(secrets: Path, mode: str = "mtls") -> GrpcTls:
    tls = secrets / "tls"
    return GrpcTls(mode, tls / "ca.crt", tls / "chronic.crt", tls / "chronic.key")


def scraper(secrets: Path, certificate: bool = True) -> ssl.SSLContext:
    tls = secrets / "tls"
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    if certificate:
        context.load_cert_chain(tls / f"{SCRAPER}.crt", tls / f"{SCRAPER}.key")
    return context


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[list[WSGIServer]]:
    servers: list[WSGIServer] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def started(serve: list[WSGIServer], tls: GrpcTls) -> int:
    port = free_port()
    serve.append(serve_metrics(port, "127.0.0.1", tls))
    return port


def scrape(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=5, context=context) as answer:
        return str(answer.read().decode())


REFUSED = (OSError, http.client.HTTPException)
# A line of the platform's metrics, on every page the services serve.
PAGE = f"# TYPE {GRPC_REQUESTS._name}_total counter"


def test_by_default_a_service_serves_metrics_over_mutual_tls_with_its_grpc_certificate(
    secrets: Path,
) -> None:
    settings = load_settings("chronic", files_of(secrets))
    assert settings.metrics_tls.mutual
    assert settings.metrics_tls == settings.grpc_tls
    assert settings.metrics_tls.cert_file == secrets / "tls" / "chronic.crt"
    # Prometheus's own certificate, which the local Prometheus presents.
    scraping = load_metrics_tls(SCRAPER, files_of(secrets, SCRAPER))
    assert scraping.mutual and scraping.cert_file == secrets / "tls" / "prometheus.crt"


def test_metrics_follow_grpc_unless_chosen_apart_and_are_plain_only_when_chosen(
    secrets: Path,
) -> None:
    files = files_of(secrets)
    assert load_metrics_tls("chronic", files | {"EMEUSE_GRPC_TLS": "tls"}).mode == "tls"
    assert load_metrics_tls("chronic", files | {"EMEUSE_GRPC_TLS": "off"}) == NO_TLS
    apart = files | {"EMEUSE_GRPC_TLS": "off", "EMEUSE_METRICS_TLS": "mtls"}
    assert load_metrics_tls("chronic", apart).mutual
    assert load_settings("chronic", LOOPBACK_PLAINTEXT).metrics_tls == NO_TLS
    with pytest.raises(SettingsError, match="EMEUSE_METRICS_TLS='https'"):
        load_metrics_tls("chronic", files | {"EMEUSE_METRICS_TLS": "https"})


def test_without_certificates_the_default_stops_at_start_rather_than_serve_plain_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .local/secrets here
    with pytest.raises(SettingsError, match=r"EMEUSE_TLS_CA_FILE=.*no such file"):
        load_metrics_tls("chronic", {})


def test_a_scraper_with_the_ca_and_its_certificate_reads_metrics_over_https(
    secrets: Path, serve: list[WSGIServer]
) -> None:
    port = started(serve, service_tls(secrets))
    text = scrape(f"https://127.0.0.1:{port}/metrics", scraper(secrets))
    assert PAGE in text


def test_plain_http_and_a_scraper_without_a_certificate_are_refused(
    secrets: Path, serve: list[WSGIServer]
) -> None:
    port = started(serve, service_tls(secrets))
    with pytest.raises(REFUSED):
        scrape(f"http://127.0.0.1:{port}/metrics")
    with pytest.raises(REFUSED):
        scrape(f"https://127.0.0.1:{port}/metrics", scraper(secrets, certificate=False))
    # Under `tls` the CA alone is enough; plain HTTP is still refused.
    port = started(serve, service_tls(secrets, "tls"))
    assert PAGE in scrape(f"https://127.0.0.1:{port}/metrics", scraper(secrets, False))
    with pytest.raises(REFUSED):
        scrape(f"http://127.0.0.1:{port}/metrics")


def test_a_certificate_from_another_ca_is_refused(
    secrets: Path, serve: list[WSGIServer], tmp_path: Path
) -> None:
    other = tmp_path / "other"
    certs_sh(other)
    port = started(serve, service_tls(secrets))
    stranger = ssl.create_default_context(cafile=str(secrets / "tls" / "ca.crt"))
    stranger.load_cert_chain(other / "tls" / "prometheus.crt", other / "tls" / "prometheus.key")
    with pytest.raises(REFUSED):
        scrape(f"https://127.0.0.1:{port}/metrics", stranger)


def test_a_client_that_connects_and_says_nothing_holds_no_scrape(
    secrets: Path, serve: list[WSGIServer]
) -> None:
    port = started(serve, service_tls(secrets))
    with socket.create_connection(("127.0.0.1", port)):
        began = time.monotonic()
        assert PAGE in scrape(f"https://127.0.0.1:{port}/metrics", scraper(secrets))
        assert time.monotonic() - began < 2


def served_serial(port: int, context: ssl.SSLContext) -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="chronic") as connection,
    ):
        return str(connection.getpeercert()["serialNumber"])


def test_a_renewed_certificate_is_served_from_the_next_connection_without_a_restart(
    secrets: Path, serve: list[WSGIServer], tmp_path: Path
) -> None:
    own = tmp_path / "secrets"
    shutil.copytree(secrets, own)
    port = started(serve, service_tls(own))
    before = served_serial(port, scraper(own))
    certs_sh(own, "renew", days=60)
    deadline = time.monotonic() + 10
    after = served_serial(port, scraper(own))
    while after == before:
        assert time.monotonic() < deadline, "the renewed certificate is not served"
        time.sleep(0.3)
        after = served_serial(port, scraper(own))
    renewed = ssl._ssl._test_decode_cert(str(own / "tls" / "chronic.crt"))  # type: ignore[attr-defined]
    assert after == renewed["serialNumber"]
    assert PAGE in scrape(f"https://127.0.0.1:{port}/metrics", scraper(own))
