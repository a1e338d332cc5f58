"""The whole platform on the broker's secure listener, each service logged in as its own
user and holding only the ACLs emeuse.runtime.acls draws from what it declares: every
service starts (its inputs, changelog, group and transactional ids), a critical reading
travels from chronic to access and on to coordination's timeline, and the broker denies
no service anything on the way (its authorizer log, deploy/kafka/log4j.properties)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.registry import (
    ALERT_RAISED,
    CONSULTATION_REQUESTED,
    PATIENT_DATA_ACCESSED,
    SERVICES,
    TIMELINE_ENTRY_RECORDED,
)
from emeuse.runtime.grpc_tls import open_channel
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.conftest import SECRETS
from tests.integration.harness import Bus, Platform
from tests.integration.test_chronic_alerts import GLUCOSE_BAND, care_plan, reading
from tests.integration.test_encryption import TOOLS, health, secure_env

# What a client logs when the broker refuses it (TOPIC_/GROUP_/TRANSACTIONAL_ID_
# AUTHORIZATION_FAILED, "not authorized").
REFUSED = ("authorization", "not authorized")
# The test broker's log (scripts/test.sh's KAFKA_HOME), where each ACL denial is written.
BROKER_LOG = Path(os.environ.get("KAFKA_HOME", ".local/kafka-test")) / "logs" / "server.log"


def broker_log_size() -> int:
    return BROKER_LOG.stat().st_size if BROKER_LOG.is_file() else 0


def denials_since(offset: int) -> list[str]:
    """The broker's ACL denials of platform users logged after `offset` in its log."""
    if not BROKER_LOG.is_file():
        return []
    with BROKER_LOG.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    return [line for line in lines if "Principal = User:emeuse-" in line and " is Denied " in line]


@pytest.fixture(scope="module")
def secured(
    secure_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Platform, int]]:
    """The platform, and where the broker's log stood before it started."""
    platform = Platform(secure_bootstrap, tmp_path_factory.mktemp("least-privilege"))
    log_from = broker_log_size()
    run = uuid.uuid4().hex[:8]
    try:
        # chronic first: access is told its gRPC address.
        for service in ("chronic", *[s for s in SERVICES if s != "chronic"]):
            # An app id of the service's own (`emeuse-<svc>-…`), as its ACLs require.
            process = platform.new_process(service, app_id=f"emeuse-{service}-acl-{run}")
            password = SECRETS / f"kafka/emeuse-{service}.password"
            process.env = secure_env(process, secure_bootstrap, password)
            platform.services[service] = process
            process.start()
        deadline = time.monotonic() + 120
        for process in platform.services.values():
            while health(process.grpc_target, TOOLS) != "SERVING":
                assert process.process is not None
                assert process.process.poll() is None, process.log_tail()
                assert time.monotonic() < deadline, process.log_tail()
                time.sleep(0.5)
        yield platform, log_from
    finally:
        platform.stop_all()


def test_the_platform_works_end_to_end_with_each_service_on_its_own_acls(
    secured: tuple[Platform, int], bootstrap: str
) -> None:
    platform, log_from = secured
    patient = random_pseudonym()
    with open_channel(platform.services["chronic"].grpc_target, TOOLS) as channel:
        chronic = api_grpc.ChronicServiceStub(channel)
        chronic.EnrollPatient(
            api.EnrollPatientRequest(
                care_plan=care_plan(patient, "DIABETES", GLUCOSE_BAND),
                territory="55",
                experiment_id="exp-acl",
            ),
            timeout=20,
            metadata=platform.auth,
        )
        summary = api.GetPatientSummaryRequest(patient_pseudonym=patient)
        deadline = time.monotonic() + 45
        while not chronic.GetPatientSummary(
            summary, timeout=5, metadata=platform.auth
        ).has_care_plan:
            assert time.monotonic() < deadline, "care plan not applied"
            time.sleep(0.3)
        chronic.RecordReading(
            api.RecordReadingRequest(
                reading=reading(patient, "2339-0", 480, "mg/dL"),
                territory="55",
                experiment_id="exp-acl",
            ),
            timeout=20,
            metadata=platform.auth,
        )
    # Read back on the loopback listener, as the operators' tools would.
    bus = Bus(bootstrap)
    try:
        # The session's shared platform also runs chronic and access on these topics: each
        # group writes the same fact under the same derived id, so count distinct ids.
        alerts = bus.wait_for(ALERT_RAISED.name, lambda r: r["key"] == patient)
        assert len({a["headers"]["ce_id"] for a in alerts}) == 1
        assert {a["event"]["severity"] for a in alerts} == {"ALERT_SEVERITY_CRITICAL"}
        # access read chronic's alert and wrote its own request...
        requests = bus.wait_for(
            CONSULTATION_REQUESTED.name, lambda r: r["event"]["patient_pseudonym"] == patient
        )
        assert len({r["headers"]["ce_id"] for r in requests}) == 1
        assert {r["headers"]["ce_source"] for r in requests} == {"emeuse/access"}
        # ...coordination re-keyed it onto the person's timeline through its own topic...
        entries = bus.wait_for(TIMELINE_ENTRY_RECORDED.name, lambda r: r["key"] == patient)
        assert all(e["headers"]["ce_source"] == "emeuse/coordination" for e in entries)
        # ...and chronic audited the calls on the trail no service may read.
        bus.wait_for(
            PATIENT_DATA_ACCESSED.name,
            lambda r: r["key"] == patient and r["event"]["service"] == "chronic",
        )
    finally:
        bus.close()
    for service, process in platform.services.items():
        assert process.process is not None and process.process.poll() is None, service
        said = process.log_tail(400).lower()
        assert not any(word in said for word in REFUSED), f"{service}:\n{process.log_tail()}"
    assert BROKER_LOG.is_file(), "the broker's log: run the integration tests with scripts/test.sh"
    assert denials_since(log_from) == []
