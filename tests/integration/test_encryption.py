"""A service with mutual TLS on its gRPC port and SASL_SSL (SCRAM-SHA-512) to Kafka, against
the broker's secure listener that scripts/test.sh opens (EMEUSE_KAFKA_SECURE_BOOTSTRAP, with
the CA, certificates and passwords under SECRETS_DIR)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.deploy.prometheus import RULES_DIR, render
from emeuse.registry import (
    ALERT_RAISED,
    HOME_CONFIGURED,
    PATIENT_DATA_ACCESSED,
    READING_RECORDED,
    TopicSpec,
)
from emeuse.runtime.grpc_tls import certificate_expiry, open_channel
from emeuse.runtime.kafka_clients import client_options
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.security import GrpcTls, KafkaLogin
from tests.integration.conftest import SECRETS, TLS
from tests.integration.harness import (
    ROOT,
    Platform,
    ServiceProcess,
    metric,
    prometheus_up,
    running_prometheus,
    scrape,
)
from tests.integration.test_chronic_alerts import GLUCOSE_BAND, care_plan
from tests.integration.test_partner_security import PARTNER_BOOTSTRAP


def secure_env(
    process: ServiceProcess, bootstrap: str, password_file: Path, tls: Path = TLS
) -> dict[str, str]:
    prefix = f"EMEUSE_{process.service.upper()}_"
    return process.env | {
        "EMEUSE_KAFKA_BOOTSTRAP": bootstrap,
        "EMEUSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EMEUSE_TLS_CA_FILE": str(tls / "ca.crt"),
        prefix + "KAFKA_PASSWORD_FILE": str(password_file),
        "EMEUSE_GRPC_TLS": "mtls",
        "EMEUSE_METRICS_TLS": "mtls",
        prefix + "TLS_CERT_FILE": str(tls / f"{process.service}.crt"),
        prefix + "TLS_KEY_FILE": str(tls / f"{process.service}.key"),
    }


# The tools' certificate (party `cli`), as `emeuse` presents it under mTLS.
TOOLS = GrpcTls("mtls", TLS / "ca.crt", TLS / "cli.crt", TLS / "cli.key")
# Trusts the CA but has no certificate of its own to present.
NO_CLIENT_CERTIFICATE = GrpcTls("tls", TLS / "ca.crt")


def wait_serving(process: ServiceProcess, tls: GrpcTls, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while health(process.grpc_target, tls) != "SERVING":
        assert process.process is not None
        assert process.process.poll() is None, process.log_tail()
        assert time.monotonic() < deadline, process.log_tail()
        time.sleep(0.5)


def health(target: str, tls: GrpcTls) -> str:
    with open_channel(target, tls) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


@pytest.fixture(scope="module")
def chronic(
    secure_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Platform, ServiceProcess]]:
    platform = Platform(secure_bootstrap, tmp_path_factory.mktemp("encrypted"))
    process = platform.new_process("chronic", app_id=f"emeuse-chronic-tls-{uuid.uuid4().hex[:8]}")
    process.env = secure_env(process, secure_bootstrap, SECRETS / "kafka/emeuse-chronic.password")
    platform.services["chronic"] = process
    process.start()
    try:
        wait_serving(process, TOOLS)
        yield platform, process
    finally:
        process.stop()


def test_a_call_without_a_client_certificate_is_refused_and_one_with_it_is_answered(
    chronic: tuple[Platform, ServiceProcess],
) -> None:
    platform, process = chronic
    assert health(process.grpc_target, NO_CLIENT_CERTIFICATE) == "UNAVAILABLE"
    assert health(process.grpc_target, GrpcTls()) == "UNAVAILABLE"  # plaintext
    patient = random_pseudonym()
    plan = care_plan(patient, "DIABETES", GLUCOSE_BAND)
    with open_channel(process.grpc_target, TOOLS) as channel:
        stub = api_grpc.ChronicServiceStub(channel)
        # The certificate lets the call in; the bearer token is still required.
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetPatientSummary(api.GetPatientSummaryRequest(patient_pseudonym=patient))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Published to Kafka and applied from it: both over SASL_SSL.
        stub.EnrollPatient(
            api.EnrollPatientRequest(care_plan=plan, territory="55", experiment_id="exp-tls"),
            timeout=20,
            metadata=platform.auth,
        )
        request = api.GetPatientSummaryRequest(patient_pseudonym=patient)
        deadline = time.monotonic() + 45
        while not stub.GetPatientSummary(request, timeout=5, metadata=platform.auth).has_care_plan:
            assert time.monotonic() < deadline, "care plan not applied over SASL_SSL"
            time.sleep(0.3)


def test_the_service_reports_when_its_certificate_expires(
    chronic: tuple[Platform, ServiceProcess],
) -> None:
    _, process = chronic
    metrics = process.metrics()
    name = "emeuse_tls_certificate_expiry_timestamp_seconds"
    expected = certificate_expiry(TLS / "chronic.crt")
    assert metric(metrics, name, service="chronic", certificate="service") == expected
    assert metric(metrics, name, service="chronic", certificate="ca") > expected


# Prometheus's certificate (party `prometheus`), as the local Prometheus presents it.
SCRAPER = GrpcTls("mtls", TLS / "ca.crt", TLS / "prometheus.crt", TLS / "prometheus.key")


def test_metrics_are_served_over_https_to_prometheus_and_plain_http_is_refused(
    chronic: tuple[Platform, ServiceProcess],
) -> None:
    _, process = chronic
    page = scrape(process.metrics_port, SCRAPER)
    assert metric(page, "emeuse_tls_certificate_expiry_timestamp_seconds", service="chronic")
    # The certificate shown is the service's own, the one its gRPC port serves.
    shown = served_certificate(process.metrics_port, SCRAPER)
    assert shown == served_certificate(process.grpc_port, SCRAPER)
    assert ("commonName", "chronic") in {field for name in shown["subject"] for field in name}
    with pytest.raises((OSError, http.client.HTTPException)):
        scrape(process.metrics_port, GrpcTls())  # plain HTTP
    with pytest.raises((OSError, http.client.HTTPException)):
        scrape(process.metrics_port, NO_CLIENT_CERTIFICATE)


def test_the_real_prometheus_scrapes_https_metrics_with_the_configuration_make_up_renders(
    chronic: tuple[Platform, ServiceProcess], tmp_path: Path
) -> None:
    _, process = chronic
    config = tmp_path / "prometheus.yml"
    targets = {"chronic": f"127.0.0.1:{process.metrics_port}"}
    config.write_text(render(SCRAPER, RULES_DIR, targets, interval="1s"))
    with running_prometheus(config, tmp_path) as prometheus:
        assert prometheus_up(prometheus, {"chronic"}) == {"chronic": "1"}


def test_a_service_with_a_wrong_kafka_password_stops_at_once_saying_why(
    secure_bootstrap: str, tmp_path: Path
) -> None:
    platform = Platform(secure_bootstrap, tmp_path)
    process = platform.new_process("home")
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    process.env = secure_env(process, secure_bootstrap, wrong)
    process.start()
    assert process.process is not None
    status = process.process.wait(timeout=60)
    assert status == 2
    said = process.log_tail()
    assert "refused the login of emeuse-home (SCRAM-SHA-512)" in said
    assert "EMEUSE_HOME_KAFKA_PASSWORD_FILE" in said


def test_the_emeuse_command_logs_in_over_sasl_ssl(secure_bootstrap: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMEUSE_")} | {
        "EMEUSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EMEUSE_TLS_CA_FILE": str(TLS / "ca.crt"),
        "EMEUSE_CLI_KAFKA_PASSWORD_FILE": str(SECRETS / "kafka/emeuse-cli.password"),
    }
    emeuse = str(Path(sys.executable).parent / "emeuse")
    checked = subprocess.run(
        [emeuse, "topics", "create", "--bootstrap", secure_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert checked.returncode == 0, checked.stderr
    env["EMEUSE_CLI_KAFKA_PASSWORD_FILE"] = str(SECRETS / "kafka/emeuse-home.password")
    refused = subprocess.run(
        [emeuse, "topics", "create", "--bootstrap", secure_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert refused.returncode != 0
    assert "refused the login of emeuse-cli (SCRAM-SHA-512)" in refused.stderr


def login_of(user: str) -> KafkaLogin:
    password = (SECRETS / f"kafka/{user}.password").read_text().strip()
    return KafkaLogin("SASL_SSL", TLS / "ca.crt", user, password)


def audit_reader(secure_bootstrap: str, user: str) -> KafkaConsumer:
    return topic_reader(secure_bootstrap, user, PATIENT_DATA_ACCESSED)


def topic_reader(secure_bootstrap: str, user: str, spec: TopicSpec) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=secure_bootstrap,
        enable_auto_commit=False,
        **client_options(login_of(user)),
    )
    partitions = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return consumer


def test_a_service_writes_the_audit_trail_and_only_the_operators_tools_read_it(
    chronic: tuple[Platform, ServiceProcess], secure_bootstrap: str
) -> None:
    platform, process = chronic
    patient = random_pseudonym()
    with open_channel(process.grpc_target, TOOLS) as channel:
        api_grpc.ChronicServiceStub(channel).GetPatientStatus(
            api.GetPatientStatusRequest(patient_pseudonym=patient),
            timeout=20,
            metadata=platform.auth,
        )
    # The operators' tools (emeuse-cli, as `emeuse audit` logs in) read the service's record.
    tools = audit_reader(secure_bootstrap, "emeuse-cli")
    try:
        deadline = time.monotonic() + 30
        keys: set[bytes] = set()
        while patient.encode() not in keys:
            assert time.monotonic() < deadline, "the service's audit record was not read"
            for records in tools.poll(timeout_ms=500).values():
                keys.update(r.key for r in records if r.key)
    finally:
        tools.close()
    # A service's own user writes it, and may not read it.
    service = audit_reader(secure_bootstrap, "emeuse-home")
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                service.poll(timeout_ms=500)
    finally:
        service.close()


def tools(secure_bootstrap: str, *args: str, user: str = "emeuse-cli") -> Any:
    """`emeuse ...` logged in to the SASL_SSL listener as `user` (the operators' tools by
    default; EMEUSE_CLI_KAFKA_USER=emeuse-auditor as an auditor runs `emeuse audit`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMEUSE_")} | {
        "EMEUSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EMEUSE_TLS_CA_FILE": str(TLS / "ca.crt"),
        "EMEUSE_CLI_KAFKA_USER": user,
        "EMEUSE_CLI_KAFKA_PASSWORD_FILE": str(SECRETS / f"kafka/{user}.password"),
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "emeuse"), *args, "--bootstrap", secure_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def test_an_auditor_reads_the_audit_trail_and_is_refused_every_health_topic(
    chronic: tuple[Platform, ServiceProcess], secure_bootstrap: str
) -> None:
    platform, process = chronic
    patient = random_pseudonym()
    with open_channel(process.grpc_target, TOOLS) as channel:
        api_grpc.ChronicServiceStub(channel).GetPatientStatus(
            api.GetPatientStatusRequest(patient_pseudonym=patient),
            timeout=20,
            metadata=platform.auth,
        )
    # `emeuse audit` as the auditors run it: who read this person's data.
    deadline = time.monotonic() + 30
    while True:
        audited = tools(
            secure_bootstrap, "audit", "--patient", patient, "--json", user="emeuse-auditor"
        )
        assert audited.returncode == 0, audited.stderr
        rows = [json.loads(line) for line in audited.stdout.splitlines()]
        if rows:
            break
        assert time.monotonic() < deadline, "the auditor did not read the service's record"
        time.sleep(0.5)
    assert {(r["subject_pseudonym"], r["method"].rpartition("/")[2]) for r in rows} == {
        (patient, "GetPatientStatus")
    }
    # The broker shows it the trail alone: a health topic is hidden and reads nothing.
    looker = KafkaConsumer(
        bootstrap_servers=secure_bootstrap, **client_options(login_of("emeuse-auditor"))
    )
    try:
        assert looker.topics() == {PATIENT_DATA_ACCESSED.name}
    finally:
        looker.close()
    reader = topic_reader(secure_bootstrap, "emeuse-auditor", READING_RECORDED)
    try:
        got = [r for _ in range(6) for rs in reader.poll(timeout_ms=500).values() for r in rs]
    finally:
        reader.close()
    assert got == []
    # Nor may it write the trail.
    # Not idempotent: the write itself is asked (an idempotent producer is refused earlier,
    # the cluster's IdempotentWrite, which the auditor lacks too).
    forger = KafkaProducer(
        bootstrap_servers=secure_bootstrap,
        max_block_ms=15000,
        enable_idempotence=False,
        **client_options(login_of("emeuse-auditor")),
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            forger.send(PATIENT_DATA_ACCESSED.name, key=patient.encode(), value=b"x").get(
                timeout=20
            )
    finally:
        forger.close(timeout=5)


def test_the_operators_tools_add_watch_and_remove_a_partner_with_their_narrowed_acls(
    secure_bootstrap: str, tmp_path: Path
) -> None:
    partner = f"sec-{uuid.uuid4().hex[:8]}"
    added = tools(
        secure_bootstrap,
        "partner",
        "add",
        partner,
        "--purpose",
        "remote-monitoring",
        "--experiment",
        "integration-tests",
        "--read",
        "emeuse.chronic.v1.ReadingRecorded",
        "--territory",
        "55",
        "--secrets-dir",
        str(tmp_path),
        "--partner-bootstrap",
        PARTNER_BOOTSTRAP,
    )
    assert added.returncode == 0, added.stderr
    watched = tools(secure_bootstrap, "partner", "status", partner, "--json")
    assert watched.returncode == 0, watched.stderr
    removed = tools(
        secure_bootstrap,
        "partner",
        "remove",
        partner,
        "--territory",
        "55",
        "--secrets-dir",
        str(tmp_path),
    )
    assert removed.returncode == 0, removed.stderr


def polls_refused(consumer: KafkaConsumer, seconds: float = 15) -> KafkaError | None:
    """The authorization error a consumer's polls meet within `seconds`, if any."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            consumer.poll(timeout_ms=500)
    except (TopicAuthorizationFailedError, GroupAuthorizationFailedError) as exc:
        return exc
    finally:
        consumer.close()
    return None


def test_a_services_user_reads_what_it_declares_and_nothing_another_service_owns(
    chronic: tuple[Platform, ServiceProcess], secure_bootstrap: str
) -> None:
    # home sees and reads its own inputs (emeuse.runtime.acls, services/home/topics.py), and
    # not chronic's alerts, which it does not declare: the broker hides them from it.
    assert polls_refused(topic_reader(secure_bootstrap, "emeuse-home", HOME_CONFIGURED), 3) is None
    looker = KafkaConsumer(
        bootstrap_servers=secure_bootstrap, **client_options(login_of("emeuse-home"))
    )
    try:
        visible = looker.topics()
    finally:
        looker.close()
    assert HOME_CONFIGURED.name in visible
    assert ALERT_RAISED.name not in visible
    assert PATIENT_DATA_ACCESSED.name in visible  # written, never read (the test above)
    reader = topic_reader(secure_bootstrap, "emeuse-home", ALERT_RAISED)
    try:
        got = [r for _ in range(6) for rs in reader.poll(timeout_ms=500).values() for r in rs]
    finally:
        reader.close()
    assert got == []
    # Nor may it join chronic's consumer group, taking chronic's partitions.
    intruder = KafkaConsumer(
        HOME_CONFIGURED.name,
        bootstrap_servers=secure_bootstrap,
        group_id="emeuse-chronic",
        enable_auto_commit=False,
        **client_options(login_of("emeuse-home")),
    )
    assert isinstance(polls_refused(intruder), GroupAuthorizationFailedError)


def test_a_services_user_cannot_write_a_topic_another_service_owns(
    chronic: tuple[Platform, ServiceProcess], secure_bootstrap: str
) -> None:
    producer = KafkaProducer(
        bootstrap_servers=secure_bootstrap,
        max_block_ms=15000,
        **client_options(login_of("emeuse-home")),
    )
    try:
        # A forged alert, as if chronic had raised it: the broker refuses home's user.
        with pytest.raises((TopicAuthorizationFailedError, KafkaError)) as refused:
            producer.send(ALERT_RAISED.name, key=b"psn-forged", value=b"forged").get(timeout=20)
        assert (
            "Authorization" in type(refused.value).__name__
            or "authoriz" in str(refused.value).lower()
        )
    finally:
        producer.close(timeout=5)


def certs_sh(secrets: Path, *args: str, days: int) -> None:
    made = subprocess.run(
        [str(ROOT / "scripts" / "certs.sh"), *args],
        env=os.environ | {"SECRETS_DIR": str(secrets), "CERT_DAYS": str(days)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr


def served_certificate(port: int, client: GrpcTls) -> dict[str, Any]:
    """The certificate a new connection is shown (the client presenting its own)."""
    assert client.ca_file and client.cert_file and client.key_file
    context = ssl.create_default_context(cafile=str(client.ca_file))
    context.load_cert_chain(client.cert_file, client.key_file)
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as connection,
    ):
        return connection.getpeercert()


def expiry_gauge(process: ServiceProcess) -> float:
    name = "emeuse_tls_certificate_expiry_timestamp_seconds"
    return metric(process.metrics(), name, service=process.service, certificate="service")


def test_a_certificate_renewed_with_certs_sh_is_served_without_a_restart(
    secure_bootstrap: str, tmp_path: Path
) -> None:
    # A secrets folder of its own, with the broker's CA and Kafka passwords: renewing there
    # leaves the files the other tests use alone.
    secrets = tmp_path / "secrets"
    (secrets / "tls").mkdir(parents=True)
    for name in ("ca.crt", "ca.key"):
        shutil.copy2(TLS / name, secrets / "tls" / name)
    shutil.copytree(SECRETS / "kafka", secrets / "kafka")
    certs_sh(secrets, days=30)
    tls = secrets / "tls"
    tools = GrpcTls("mtls", tls / "ca.crt", tls / "cli.crt", tls / "cli.key")
    platform = Platform(secure_bootstrap, tmp_path / "platform")
    process = platform.new_process("chronic", app_id=f"emeuse-chronic-tls-{uuid.uuid4().hex[:8]}")
    password = secrets / "kafka/emeuse-chronic.password"
    process.env = secure_env(process, secure_bootstrap, password, tls)
    platform.services["chronic"] = process
    process.start()
    try:
        wait_serving(process, tools)
        assert process.process is not None
        pid = process.process.pid
        before = served_certificate(process.grpc_port, tools)
        request = api.GetPatientSummaryRequest(patient_pseudonym=random_pseudonym())
        with open_channel(process.grpc_target, tools) as opened_before:
            old_stub = api_grpc.ChronicServiceStub(opened_before)
            old_stub.GetPatientSummary(request, timeout=5, metadata=platform.auth)

            certs_sh(secrets, "renew", days=90)
            renewed = certificate_expiry(tls / "chronic.crt")
            # The gauge follows before any new connection asks for the certificate.
            deadline = time.monotonic() + 15
            while expiry_gauge(process) != renewed:
                assert time.monotonic() < deadline, "the expiry gauge kept the old certificate"
                time.sleep(0.5)
            after = served_certificate(process.grpc_port, tools)
            while after["serialNumber"] == before["serialNumber"]:
                assert time.monotonic() < deadline, "the renewed certificate is not served"
                time.sleep(0.5)
                after = served_certificate(process.grpc_port, tools)
            assert ssl.cert_time_to_seconds(after["notAfter"]) == renewed
            assert renewed > ssl.cert_time_to_seconds(before["notAfter"]) + 59 * 86400
            # /metrics shows it from its next connection too (it looks every second).
            scraper = GrpcTls(
                "mtls", tls / "ca.crt", tls / "prometheus.crt", tls / "prometheus.key"
            )
            while (
                served_certificate(process.metrics_port, scraper)["serialNumber"]
                != (after["serialNumber"])
            ):
                assert time.monotonic() < deadline, "/metrics serves the old certificate"
                time.sleep(0.5)

            # A new client, with the renewed tools' certificate, is answered; so is the
            # connection opened before the renewal.
            with open_channel(process.grpc_target, tools) as opened_after:
                stub = api_grpc.ChronicServiceStub(opened_after)
                assert not stub.GetPatientSummary(
                    request, timeout=5, metadata=platform.auth
                ).has_care_plan
            old_stub.GetPatientSummary(request, timeout=5, metadata=platform.auth)

        assert process.process.poll() is None and process.process.pid == pid
    finally:
        process.stop()
