"""Partner apps on a real broker: `emeuse partner run` handles the feed, dead-letters what
keeps failing, commits what it handled and exits 0 on SIGTERM.

The consent gateway that fills feeds in production is not needed: the test writes the
feed itself, with the platform's envelope headers.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from emeuse import partners
from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertRaised,
    AlertSeverity,
    CarePlanUpdated,
    ReadingRecorded,
)
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import ALERT_RAISED, CARE_PLAN_UPDATED, READING_RECORDED
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym
from tests.chaos.poison import send_poison_record
from tests.integration.events import headers_for, new_id
from tests.integration.harness import ROOT, Bus, emeuse, free_port, metric
from tests.integration.identifier_scan import HOSTILE_SOURCE, findings_in_record

pytestmark = pytest.mark.integration
PARTNER_BOOTSTRAP = os.environ.get("EMEUSE_KAFKA_PARTNER_BOOTSTRAP", "127.0.0.1:9094")
STOP_GRACE_SECONDS = 20


def new_partner() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


def add_partner(bootstrap: str, partner: str, secrets_dir: Path) -> Path:
    """`emeuse partner add`: topics, SCRAM credential, ACLs; returns its settings file."""
    added = emeuse(
        "partner",
        "add",
        partner,
        "--purpose",
        "remote-monitoring",
        "--read",
        "emeuse.chronic.v1.ReadingRecorded",
        "--territory",
        "55",
        "--secrets-dir",
        str(secrets_dir),
        "--partner-bootstrap",
        PARTNER_BOOTSTRAP,
        bootstrap=bootstrap,
    )
    assert added.returncode == 0, added.stderr
    return secrets_dir / f"{partner}.properties"


def create_partner_topics(bootstrap: str, partner: str) -> None:
    """What `emeuse partner add` does for the topics (credentials and ACLs aside)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic(name, num_partitions=partners.PARTITIONS, replication_factor=1)
                for name in (
                    partners.feed_topic(partner),
                    partners.inbound_topic(partner),
                    partners.dead_letter_topic(partner),
                )
            ]
        )
    finally:
        admin.close()


class PartnerProcess:
    def __init__(self, target: str, env: dict[str, str], log_path: Path) -> None:
        self.metrics_port = free_port()
        self.log_path = log_path
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "emeuse"), "partner", "run", target],
            cwd=ROOT,
            env={**env, "EMEUSE_PARTNER_METRICS_PORT": str(self.metrics_port)},
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def wait_metric(self, name: str, at_least: float, timeout: float = 60, **labels: str) -> None:
        deadline = time.monotonic() + timeout
        value = 0.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"partner exited {self.process.returncode}:\n{self.log()}")
            try:
                value = metric(self.metrics(), name, **labels)
            except OSError:
                value = 0.0
            if value >= at_least:
                return
            time.sleep(0.3)
        raise AssertionError(f"{name} {labels} = {value} < {at_least}:\n{self.log()}")

    def stop(self) -> int | None:
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def log(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture
def run_partner(bootstrap: str, tmp_path: Path) -> Iterator:
    started: list[PartnerProcess] = []

    def start(target: str, partner: str, **extra: str) -> PartnerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMEUSE_")}
        env |= {
            "EMEUSE_PARTNER_ID": partner,
            "EMEUSE_KAFKA_BOOTSTRAP": bootstrap,
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
        if "EMEUSE_PARTNER_CONFIG" not in extra:
            env["EMEUSE_PARTNER_LOCAL"] = "1"  # the platform's listener: no credential
        process = PartnerProcess(target, env, tmp_path / f"{partner}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def glucose(patient: str, value: float) -> ReadingRecorded:
    return ReadingRecorded(
        reading_id=new_id("glu"),
        patient_pseudonym=patient,
        loinc_code="2339-0",
        value=value,
        unit="mg/dL",
        measured_at=timestamp(datetime.now(UTC)),
    )


def alert(patient: str) -> AlertRaised:
    return AlertRaised(
        alert_id=new_id("alert"),
        patient_pseudonym=patient,
        severity=AlertSeverity.ALERT_SEVERITY_CRITICAL,
        rule="threshold.critical_high",
        raised_at=timestamp(datetime.now(UTC)),
    )


def to_feed(bus: Bus, partner: str, spec, message, patient: str) -> tuple[int, int]:
    """A record as the consent gateway republishes it to the partner's feed."""
    return bus.send(
        partners.feed_topic(partner),
        patient.encode(),
        message.SerializeToString(),
        headers_for(spec, patient),
    )


def committed(bootstrap: str, partner: str, group_suffix: str = "sdk") -> dict[int, int]:
    group = partners.consumer_group_prefix(partner) + group_suffix
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


def records_of(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: list = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                found.extend(records)
        return found
    finally:
        consumer.close()


def test_the_example_partner_handles_its_feed_commits_it_and_stops_on_sigterm(
    bootstrap, bus, run_partner
):
    partner = new_partner()
    create_partner_topics(bootstrap, partner)
    patients = [random_pseudonym() for _ in range(3)]
    sent: dict[int, int] = {}
    for patient in patients:
        for value in (110, 180):
            partition, offset = to_feed(
                bus, partner, READING_RECORDED, glucose(patient, value), patient
            )
            sent[partition] = max(sent.get(partition, 0), offset + 1)
    partition, offset = to_feed(bus, partner, ALERT_RAISED, alert(patients[0]), patients[0])
    sent[partition] = max(sent.get(partition, 0), offset + 1)
    # A type GlucoFlow has no handler for: committed, counted, not handled.
    plan = CarePlanUpdated(patient_pseudonym=patients[1], care_plan_id="cp-1")
    partition, offset = to_feed(bus, partner, CARE_PLAN_UPDATED, plan, patients[1])
    sent[partition] = max(sent.get(partition, 0), offset + 1)

    app = run_partner("examples.glucoflow.app:app", partner)
    app.wait_metric("glucoflow_glucose_readings_total", 6)
    app.wait_metric("emeuse_partner_events_handled_total", 1, type="emeuse.chronic.v1.AlertRaised")
    app.wait_metric("emeuse_partner_events_skipped_total", 1, partner=partner)
    text = app.metrics()
    assert metric(text, "glucoflow_patients_followed") == 3
    assert metric(text, "emeuse_partner_events_dead_lettered_total") == 0

    assert app.stop() == 0
    assert committed(bootstrap, partner) == sent
    log = app.log_path.read_text()
    assert '"event": "partner.stopped"' in log
    assert all(patient not in log for patient in patients)


def test_a_handler_that_keeps_failing_sends_the_record_to_the_partners_dead_letters(
    bootstrap, bus, run_partner, tmp_path
):
    partner = new_partner()
    create_partner_topics(bootstrap, partner)
    patient = random_pseudonym()
    reading = glucose(patient, 95)
    partition, offset = to_feed(bus, partner, READING_RECORDED, reading, patient)
    # Connection settings from a properties file, the format `emeuse partner add` writes.
    config = tmp_path / f"{partner}.properties"
    config.write_text(f"bootstrap.servers={bootstrap}\nsecurity.protocol=PLAINTEXT\n")

    app = run_partner(
        "tests.integration.partner_apps:failing",
        partner,
        EMEUSE_PARTNER_CONFIG=str(config),
        EMEUSE_KAFKA_BOOTSTRAP="127.0.0.1:1",  # the file wins
        EMEUSE_PARTNER_RETRIES="2",
        EMEUSE_PARTNER_BACKOFF_S="0.05",
    )
    app.wait_metric("emeuse_partner_events_dead_lettered_total", 1, partner=partner)
    assert metric(app.metrics(), "emeuse_partner_handler_failures_total") == 3

    [record] = records_of(bootstrap, partners.dead_letter_topic(partner), 1)
    letter = MessageDeadLettered.FromString(record.value)
    assert letter.cause == DeadLetterCause.DEAD_LETTER_CAUSE_HANDLER_FAILED
    assert letter.reason == ("handler failed after 3 attempt(s): RuntimeError: device cloud down")
    assert (letter.source_partition, letter.source_offset) == (partition, offset)
    assert ReadingRecorded.FromString(letter.original_value) == reading
    assert letter.original_key == patient.encode()
    assert letter.original_headers["ce_type"] == b"emeuse.chronic.v1.ReadingRecorded"
    assert dict(record.headers)["ce_source"] == f"partner/{partner}".encode()

    assert app.stop() == 0
    assert committed(bootstrap, partner) == {partition: offset + 1}


def test_a_record_naming_someone_is_dead_lettered_by_the_sdk_without_its_original(
    bootstrap, bus, run_partner, tmp_path
):
    partner = new_partner()
    create_partner_topics(bootstrap, partner)
    patient = random_pseudonym()
    reading = glucose(patient, 95)
    reading.device_id = "jean.dupont@example.fr"
    value = reading.SerializeToString()
    # Written as a hostile sender would: the scan of every topic leaves this one out.
    headers = [(n, v) for n, v in headers_for(READING_RECORDED, patient) if n != "ce_source"]
    headers.append(("ce_source", HOSTILE_SOURCE))
    partition, offset = bus.send(partners.feed_topic(partner), patient.encode(), value, headers)

    app = run_partner(
        "tests.integration.partner_apps:failing",
        partner,
        EMEUSE_PARTNER_RETRIES="0",
    )
    app.wait_metric("emeuse_partner_events_dead_lettered_total", 1, partner=partner)

    [record] = records_of(bootstrap, partners.dead_letter_topic(partner), 1)
    letter = MessageDeadLettered.FromString(record.value)
    assert letter.original_withheld
    assert letter.cause == DeadLetterCause.DEAD_LETTER_CAUSE_HANDLER_FAILED
    assert letter.reason == (
        "handler failed after 1 attempt(s): RuntimeError: device cloud down; original "
        "withheld: it holds a direct identifier (e-mail address)"
    )
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        partners.feed_topic(partner),
        partition,
        offset,
    )
    assert (letter.original_value_size, letter.original_value_sha256) == (
        len(value),
        hashlib.sha256(value).digest(),
    )
    assert not (letter.original_key or letter.original_value or letter.original_headers)
    assert record.key is None
    assert b"jean.dupont" not in record.value
    # What the scan of every topic would find in the dead letter: nothing.
    found = findings_in_record(
        record.topic, record.partition, record.offset, record.key, record.value, record.headers
    )
    assert found == []
    assert app.stop() == 0
    assert committed(bootstrap, partner) == {partition: offset + 1}


def test_a_plain_kafka_python_partner_reads_and_commits_its_feed(bootstrap, bus):
    partner = new_partner()
    create_partner_topics(bootstrap, partner)
    patient = random_pseudonym()
    reading = glucose(patient, 120)
    to_feed(bus, partner, READING_RECORDED, reading, patient)
    raised = alert(patient)
    to_feed(bus, partner, ALERT_RAISED, raised, patient)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.plain_kafka_python.consumer",
            "--partner-id",
            partner,
            "--bootstrap",
            bootstrap,
            "--max-events",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert {line for line in done.stdout.splitlines() if '"handled"' in line} and all(
        patient not in line for line in done.stdout.splitlines()
    )
    assert reading.reading_id in done.stdout and raised.alert_id in done.stdout
    assert sum(committed(bootstrap, partner, "plain").values()) == 2


def test_the_example_partner_logs_in_with_the_settings_file_emeuse_partner_add_writes(
    bootstrap, bus, run_partner, tmp_path
):
    """SASL SCRAM-SHA-512 on the partner listener, within the ACLs of the partner's user."""
    partner = new_partner()
    added = emeuse(
        "partner",
        "add",
        partner,
        "--purpose",
        "remote-monitoring",
        "--read",
        "emeuse.chronic.v1.ReadingRecorded",
        "--territory",
        "55",
        "--secrets-dir",
        str(tmp_path),
        "--partner-bootstrap",
        PARTNER_BOOTSTRAP,
        bootstrap=bootstrap,
    )
    assert added.returncode == 0, added.stderr
    config = tmp_path / f"{partner}.properties"
    patient = random_pseudonym()
    partition, offset = to_feed(bus, partner, READING_RECORDED, glucose(patient, 120), patient)

    app = run_partner(
        "examples.glucoflow.app:app",
        partner,
        EMEUSE_PARTNER_CONFIG=str(config),
        EMEUSE_KAFKA_BOOTSTRAP="127.0.0.1:1",  # the file wins
    )
    app.wait_metric("glucoflow_glucose_readings_total", 1)
    assert app.stop() == 0
    assert committed(bootstrap, partner) == {partition: offset + 1}

    # Its dead letters are written with the same credential (the ACLs allow it).
    failing = run_partner(
        "tests.integration.partner_apps:failing",
        partner,
        EMEUSE_PARTNER_CONFIG=str(config),
        EMEUSE_PARTNER_GROUP="failing",
        EMEUSE_PARTNER_RETRIES="0",
    )
    failing.wait_metric("emeuse_partner_events_dead_lettered_total", 1, partner=partner)
    assert failing.stop() == 0
    [record] = records_of(bootstrap, partners.dead_letter_topic(partner), 1)
    assert MessageDeadLettered.FromString(record.value).source_offset == offset


def test_records_the_sdk_cannot_read_are_reported_and_the_feed_goes_on_after_them(
    bootstrap, bus, run_partner, tmp_path
):
    """Logged in with its settings file (SASL on the partner listener): the raw re-read of
    the record the client cannot decode logs in the same way."""
    partner = new_partner()
    config = add_partner(bootstrap, partner, tmp_path)
    patient = random_pseudonym()
    before, after = glucose(patient, 110), glucose(patient, 120)
    garbage = b"\xff\xfe not protobuf"
    feed = partners.feed_topic(partner)
    partition, _ = to_feed(bus, partner, READING_RECORDED, before, patient)
    # A header key that is not UTF-8: aiokafka fails inside its fetch.
    poisoned = send_poison_record(
        bootstrap,
        feed,
        partition,
        key=patient.encode(),
        value=garbage,
        headers=[(b"\xff\xfe", b"x")],
    )
    # Good headers, a value that is no ReadingRecorded.
    headers = headers_for(READING_RECORDED, patient)
    _, garbled = bus.send(feed, patient.encode(), garbage, headers, partition=partition)
    _, last = bus.send(
        feed,
        patient.encode(),
        after.SerializeToString(),
        headers_for(READING_RECORDED, patient),
        partition=partition,
    )

    app = run_partner(
        "tests.integration.partner_apps:reporting",
        partner,
        EMEUSE_PARTNER_CONFIG=str(config),
        EMEUSE_KAFKA_BOOTSTRAP="127.0.0.1:1",  # the file wins
    )
    app.wait_metric("emeuse_partner_events_handled_total", 2, partner=partner)
    app.wait_metric("emeuse_partner_events_dead_lettered_total", 2, partner=partner)
    assert metric(app.metrics(), "emeuse_partner_records_unreadable_total", partner=partner) == 1
    assert app.stop() == 0
    assert committed(bootstrap, partner) == {partition: last + 1}

    text = app.log_path.read_text(errors="replace")
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    handled = [line["reading_id"] for line in lines if line["event"] == "reading.handled"]
    assert handled == [before.reading_id, after.reading_id]
    reported = {
        line["unreadable_offset"]: line["reason"]
        for line in lines
        if line["event"] == "unreadable.reported"
    }
    assert set(reported) == {poisoned, garbled}
    assert "header key b'\\xff\\xfe' is not UTF-8" in reported[poisoned]
    assert reported[garbled].startswith("value is not a emeuse.chronic.v1.ReadingRecorded")
    assert "not protobuf" not in text and patient not in text
    letters = [
        MessageDeadLettered.FromString(r.value)
        for r in records_of(bootstrap, partners.dead_letter_topic(partner), 2)
    ]
    assert {(x.source_offset, x.cause) for x in letters} == {
        (poisoned, DeadLetterCause.DEAD_LETTER_CAUSE_UNREADABLE),
        (garbled, DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE),
    }
