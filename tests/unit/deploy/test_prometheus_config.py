"""The local Prometheus's configuration (emeuse.deploy.prometheus): HTTPS with the CA and its
own certificate by default, plain HTTP only under the opt-out, the committed file rendered."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from emeuse.deploy.prometheus import COMMITTED, RULES_DIR, render_committed, render_for
from emeuse.registry import SERVICES
from emeuse.runtime.security import LOOPBACK_PLAINTEXT
from emeuse.runtime.setting import SettingsError
from emeuse.runtime.settings import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[3]


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


def scraper_env(secrets: Path) -> dict[str, str]:
    tls = secrets / "tls"
    return {
        "EMEUSE_TLS_CA_FILE": str(tls / "ca.crt"),
        "EMEUSE_PROMETHEUS_TLS_CERT_FILE": str(tls / "prometheus.crt"),
        "EMEUSE_PROMETHEUS_TLS_KEY_FILE": str(tls / "prometheus.key"),
    }


def jobs(text: str) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in yaml.safe_load(text)["scrape_configs"]}


def test_by_default_prometheus_scrapes_every_service_over_https_as_that_service(
    secrets: Path,
) -> None:
    scraped = jobs(render_for(scraper_env(secrets)))
    assert set(scraped) == set(SERVICES)
    tls = secrets / "tls"
    for service, job in scraped.items():
        assert job["scheme"] == "https"
        assert job["static_configs"][0]["targets"] == [f"127.0.0.1:{DEFAULT_PORTS[service][1]}"]
        assert job["tls_config"] == {
            "ca_file": str(tls / "ca.crt"),
            "cert_file": str(tls / "prometheus.crt"),
            "key_file": str(tls / "prometheus.key"),
            "server_name": service,
        }
    rules = yaml.safe_load(render_for(scraper_env(secrets)))["rule_files"]
    assert all(Path(rule).parent == RULES_DIR and Path(rule).is_file() for rule in rules)


def test_under_the_opt_out_prometheus_scrapes_plain_http() -> None:
    for job in jobs(render_for(LOOPBACK_PLAINTEXT)).values():
        assert job.get("scheme", "http") == "http" and "tls_config" not in job
    # gRPC's opt-out carries /metrics with it; set apart, /metrics stays HTTPS.
    assert "tls_config" not in jobs(render_for({"EMEUSE_GRPC_TLS": "off"}))["chronic"]


def test_under_server_tls_alone_prometheus_presents_no_certificate(secrets: Path) -> None:
    env = scraper_env(secrets) | {"EMEUSE_METRICS_TLS": "tls"}
    config = jobs(render_for(env))["home"]["tls_config"]
    assert set(config) == {"ca_file", "server_name"}


def test_without_the_certificates_make_up_stops_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match=r"EMEUSE_TLS_CA_FILE=.*no such file"):
        render_for({})


def test_the_committed_configuration_is_the_defaults_render() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render_committed()
    for job in jobs(COMMITTED.read_text(encoding="utf-8")).values():
        assert job["scheme"] == "https" and job["tls_config"]["cert_file"].endswith(
            ".local/secrets/tls/prometheus.crt"
        )
