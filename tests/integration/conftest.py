"""Integration tests run the four services against the real Kafka broker that `make test`
starts (EMEUSE_KAFKA_BOOTSTRAP). Without a broker they fail: they test the bus."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from emeuse.cli.kafka_ready import main as kafka_ready
from emeuse.registry import SERVICES
from emeuse.runtime.envelope import TERRITORY_CODES
from tests.integration.harness import ROOT, Bus, Platform, emeuse
from tests.integration.test_access import access, open_requests, withdraw_waiting

BOOTSTRAP = os.environ.get("EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
# The broker's SASL_SSL listener that scripts/test.sh opens, with the CA, certificates and
# passwords it made under SECRETS_DIR (test_encryption.py, test_least_privilege.py).
SECURE_BOOTSTRAP = os.environ.get("EMEUSE_KAFKA_SECURE_BOOTSTRAP", "")
SECRETS = Path(os.environ.get("SECRETS_DIR", ROOT / ".local" / "secrets"))
TLS = SECRETS / "tls"


@pytest.fixture(scope="session")
def bootstrap() -> str:
    if kafka_ready(["--bootstrap", BOOTSTRAP, "--timeout", "5"]) != 0:
        pytest.fail(
            f"no Kafka broker answers on {BOOTSTRAP}: run the integration tests with `make test`"
        )
    created = emeuse("topics", "create", bootstrap=BOOTSTRAP)
    assert created.returncode == 0, created.stderr
    return BOOTSTRAP


@pytest.fixture(scope="session")
def secure_bootstrap(bootstrap: str) -> str:
    if not SECURE_BOOTSTRAP or not (TLS / "ca.crt").is_file():
        pytest.fail("no SASL_SSL listener: run the integration tests with scripts/test.sh")
    return SECURE_BOOTSTRAP


@pytest.fixture(scope="session")
def poison_records() -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of each poison record a test wrote on purpose (the chaos
    rounds'): the identifier scan at the end of the run leaves those out, by position."""
    return set()


@pytest.fixture(scope="session")
def platform(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(bootstrap, tmp_path_factory.mktemp("platform"))
    try:
        # chronic first: access is told its gRPC address.
        for service in ("chronic", *[s for s in SERVICES if s != "chronic"]):
            running.start(service)
        for process in running.services.values():
            process.wait_serving()
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="session")
def bus(bootstrap: str) -> Iterator[Bus]:
    client = Bus(bootstrap)
    yield client
    client.close()


@pytest.fixture
def line_left_as_found(platform: Platform) -> Iterator[None]:
    """Withdraws, after the test, the consultation requests it left waiting in the three
    territories' lines: the territories' agendas are shared by every test, and a request
    left waiting takes the next slot a later test (or the simulator) publishes there."""
    client = access(platform)
    before = {
        territory: {r.request.request_id for r in open_requests(client, territory)}
        for territory in TERRITORY_CODES
    }
    yield
    for territory, waiting in before.items():
        withdraw_waiting(client, territory, keep=waiting)


@pytest.fixture(scope="session")
def simulated_partners_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where `emeuse simulate` keeps its partners' settings files, for the whole session:
    the first simulation registers its partners with the session's broker, and a later one
    (another test) finds them registered and needs their files."""
    return tmp_path_factory.mktemp("simulated-partners")
