"""A partner app's /metrics over HTTPS when its settings file says `metrics.tls`: the
services' own server (runtime/metrics_server.py), plain HTTP refused, mutual TLS when asked;
plain HTTP as before when the file says nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import pytest

from emeuse.partner.app import serve_partner_metrics
from emeuse.partner.metrics import default_metrics
from emeuse.partner.settings import PartnerSettings, load_partner_settings
from emeuse.runtime.security import GrpcTls
from emeuse.runtime.settings import SettingsError
from tests.unit.runtime.test_metrics_server import (
    REFUSED,
    certs_sh,
    free_port,
    scrape,
    scraper,
)

CONNECTION = (
    "bootstrap.servers=127.0.0.1:9094\n"
    "security.protocol=SASL_PLAINTEXT\n"
    "sasl.username=partner-glucoflow\n"
    "sasl.password=s3cret\n"
)
# A line every partner app's page has (emeuse.partner.metrics).
PAGE = "# TYPE emeuse_partner_events_received_total counter"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and certificates; the partner serves with one, Prometheus scrapes with another."""
    folder = tmp_path_factory.mktemp("partner-secrets")
    certs_sh(folder)
    return folder


def settings_of(tmp_path: Path, secrets: Path, mode: str, port: int) -> PartnerSettings:
    tls = secrets / "tls"
    config = tmp_path / "glucoflow.properties"
    config.write_text(
        CONNECTION + f"metrics.tls={mode}\n"
        f"metrics.ssl.ca.location={tls / 'ca.crt'}\n"
        f"metrics.ssl.certificate.location={tls / 'chronic.crt'}\n"
        f"metrics.ssl.key.location={tls / 'chronic.key'}\n"
    )
    env = {"EMEUSE_PARTNER_CONFIG": str(config), "EMEUSE_PARTNER_METRICS_PORT": str(port)}
    return load_partner_settings(env, "glucoflow")


@pytest.fixture
def serve() -> Iterator[list[WSGIServer]]:
    servers: list[WSGIServer] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_settings_files_metrics_tls_serves_https_and_refuses_plain_http(
    tmp_path: Path, secrets: Path, serve: list[WSGIServer]
) -> None:
    default_metrics()  # the partner's counters, registered as `partner run` does
    port = free_port()
    settings = settings_of(tmp_path, secrets, "mtls", port)
    assert settings.metrics_tls.mutual
    server = serve_partner_metrics(settings)
    assert server is not None
    serve.append(server)
    assert PAGE in scrape(f"https://127.0.0.1:{port}/metrics", scraper(secrets))
    with pytest.raises(REFUSED):
        scrape(f"http://127.0.0.1:{port}/metrics")
    with pytest.raises(REFUSED):
        scrape(f"https://127.0.0.1:{port}/metrics", scraper(secrets, certificate=False))


def test_under_tls_a_scraper_trusting_the_ca_needs_no_certificate(
    tmp_path: Path, secrets: Path, serve: list[WSGIServer]
) -> None:
    port = free_port()
    server = serve_partner_metrics(settings_of(tmp_path, secrets, "tls", port))
    assert server is not None
    serve.append(server)
    assert PAGE in scrape(f"https://127.0.0.1:{port}/metrics", scraper(secrets, False))
    with pytest.raises(REFUSED):
        scrape(f"http://127.0.0.1:{port}/metrics")


def test_a_file_without_metrics_tls_serves_plain_http_as_before(
    tmp_path: Path, serve: list[WSGIServer]
) -> None:
    config = tmp_path / "glucoflow.properties"
    config.write_text(CONNECTION)
    port = free_port()
    env = {"EMEUSE_PARTNER_CONFIG": str(config), "EMEUSE_PARTNER_METRICS_PORT": str(port)}
    settings = load_partner_settings(env, "glucoflow")
    assert not settings.metrics_tls.on
    server = serve_partner_metrics(settings)
    assert server is not None
    serve.append(server)
    assert PAGE in scrape(f"http://127.0.0.1:{port}/metrics")


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        ("metrics.tls=https\n", "metrics.tls='https': expected one of off, tls, mtls"),
        ("metrics.tls=mtls\n", "metrics.tls=mtls needs metrics.ssl.ca.location and"),
        (
            "metrics.tls=tls\nmetrics.ssl.ca.location=/nowhere/ca.crt\n"
            "metrics.ssl.certificate.location=/nowhere/p.crt\n"
            "metrics.ssl.key.location=/nowhere/p.key\n",
            "metrics.ssl.ca.location='/nowhere/ca.crt': no such file",
        ),
    ],
)
def test_a_wrong_metrics_tls_setting_stops_the_app_naming_the_key(
    tmp_path: Path, lines: str, named: str
) -> None:
    config = tmp_path / "glucoflow.properties"
    config.write_text(CONNECTION + lines)
    with pytest.raises(SettingsError, match=named.replace("(", r"\(").replace(".", r"\.")):
        load_partner_settings({"EMEUSE_PARTNER_CONFIG": str(config)}, "glucoflow")


def test_a_key_that_is_not_the_certificates_stops_the_app_naming_the_files(
    tmp_path: Path, secrets: Path
) -> None:
    settings = settings_of(tmp_path, secrets, "tls", free_port())
    tls = secrets / "tls"
    mismatched = GrpcTls("tls", tls / "ca.crt", tls / "chronic.crt", tls / "home.key")
    broken = replace(settings, metrics_tls=mismatched)
    with pytest.raises(SettingsError, match=r"/metrics on 127\.0\.0\.1:\d+: .*home\.key"):
        serve_partner_metrics(broken)
