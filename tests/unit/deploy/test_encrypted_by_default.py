"""`make up` encrypts by default: the local broker's listeners (kafka.sh) and what the tools
write into a partner's settings file. Plaintext only where a test broker chooses it
(scripts/broker-env.sh). The services' and tools' own defaults: runtime/test_security.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from emeuse.cli.environment import partner_listener_security
from emeuse.runtime.setting import SettingsError

ROOT = Path(__file__).resolve().parents[3]
# What a shell that chose nothing passes on (tests/conftest.py sets the loopback opt-out).
CHOICES = ("EMEUSE_", "KAFKA_")


def broker_properties(secrets: Path, before: str = "") -> dict[str, str]:
    """The configuration kafka.sh would start the broker with (later keys win)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CHOICES)}
    printed = subprocess.run(
        ["bash", "-c", f"{before}deploy/kafka/kafka.sh properties"],
        cwd=ROOT,
        env=env | {"SECRETS_DIR": str(secrets)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    lines = [line.partition("=") for line in printed.splitlines() if "=" in line]
    return {key: value for key, _, value in lines if not key.startswith("#")}


def listener_protocols(properties: dict[str, str]) -> dict[str, str]:
    pairs = properties["listener.security.protocol.map"].split(",")
    return dict(pair.split(":") for pair in pairs)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secrets")


def test_the_local_broker_serves_partners_and_the_platform_over_sasl_ssl(secrets: Path) -> None:
    properties = broker_properties(secrets)
    protocols = listener_protocols(properties)
    assert protocols["PARTNER"] == "SASL_SSL" and protocols["SECURE"] == "SASL_SSL"
    assert "SECURE://127.0.0.1:9095" in properties["listeners"]
    assert "PARTNER://127.0.0.1:9094" in properties["listeners"]
    # Its certificate, from the local CA that certs.sh made on the way.
    keystore = Path(properties["listener.name.partner.ssl.keystore.location"])
    assert keystore == secrets / "tls" / "kafka.pem" and keystore.is_file()
    assert (secrets / "tls" / "ca.crt").is_file()
    # The PLAINTEXT listener is the loopback one only.
    assert "PLAINTEXT://127.0.0.1:9092" in properties["listeners"]
    assert all("0.0.0.0" not in url for url in properties["listeners"].split(","))


def test_a_test_broker_chooses_plaintext_partners_and_no_secure_listener(secrets: Path) -> None:
    properties = broker_properties(
        secrets, before=". scripts/broker-env.sh && broker_env unit 21900 && "
    )
    protocols = listener_protocols(properties)
    assert protocols["PARTNER"] == "SASL_PLAINTEXT" and "SECURE" not in protocols


def test_emeuse_partner_add_writes_sasl_ssl_and_the_cas_absolute_path_by_default(
    secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker_properties(secrets)  # the CA
    monkeypatch.delenv("EMEUSE_KAFKA_PARTNER_PROTOCOL", raising=False)
    monkeypatch.setenv("EMEUSE_TLS_CA_FILE", str(secrets / "tls" / "ca.crt"))
    protocol, ca = partner_listener_security()
    assert protocol == "SASL_SSL"
    assert ca is not None and ca.is_absolute() and ca == secrets / "tls" / "ca.crt"
    monkeypatch.setenv("EMEUSE_TLS_CA_FILE", str(secrets / "none.crt"))
    with pytest.raises(SettingsError, match=r"EMEUSE_TLS_CA_FILE=.*no such file"):
        partner_listener_security()
