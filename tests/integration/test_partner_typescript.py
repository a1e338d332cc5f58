"""A second partner in another language: the TypeScript example (examples/typescript_partner,
kafkajs and the generated @emeuse/schemas) reads its consent-filtered feed with its own
credential, decodes the envelope and the protobuf payload, and commits what it handled; sets
aside on its own dead-letter topic a record it cannot read, and goes on; and publishes a
reading of its own (its device), which the gateway admits onto the platform for a consenting
patient and refuses, onto the partner's dead letters, for one who never consented.

The partner is added with `emeuse partner add` and the gateway fills its feed from the
platform's topics under the patients' consents, as in production.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from emeuse.chronic.v1 import chronic_service_pb2 as chronic_api
from emeuse.partners import (
    PARTITIONS,
    consumer_group_prefix,
    dead_letter_topic,
    feed_topic,
    inbound_topic,
)
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import READING_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.conftest import TLS
from tests.integration.events import headers_for
from tests.integration.harness import ROOT, metric
from tests.integration.test_chronic_alerts import GLUCOSE_BAND, Chronic, care_plan, enrol
from tests.integration.test_partner_gateway import consent, dead_letters, reading, send
from tests.integration.test_partner_security import (
    READING,
    Partner,
    add_partner,
    new_partner_id,
    remove_partner,
)

pytestmark = pytest.mark.integration
EXAMPLE = ROOT / "examples" / "typescript_partner"
STOP_GRACE_SECONDS = 20


@dataclass(frozen=True)
class Feed:
    partner: Partner
    consented: set[str]  # reading ids of the consenting patient: on the feed
    withheld: set[str]  # reading ids of a patient who never consented: not on it
    pseudonyms: tuple[str, ...]


@pytest.fixture(scope="module")
def consumer_script() -> Path:
    """The example compiled as `npm run build` does (tsc, from the npm workspace): its
    consumer; its device is beside it (device.js)."""
    node = shutil.which("node")
    assert node, "node is not installed: run `make install`"
    built = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "tsc"), "-p", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return EXAMPLE / "dist" / "consumer.js"


@pytest.fixture(scope="module")
def feed(platform, bus, bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    """A partner whose feed the gateway has filled: three readings of a consenting patient,
    two of one who never consented (seen and withheld by the gateway)."""
    partner = add_partner(
        bootstrap, tmp_path_factory.mktemp("ts-partner"), new_partner_id(), "--read", READING
    )
    consenting, other = random_pseudonym(), random_pseudonym()
    consent(platform, partner, consenting, True)
    consented = {send(bus, reading(consenting)) for _ in range(3)}
    withheld = {send(bus, reading(other)) for _ in range(2)}
    gateway_passed(platform, partner, len(consented), len(withheld))
    yield Feed(partner, consented, withheld, (consenting, other))
    remove_partner(bootstrap, partner)


def gateway_passed(platform, partner: Partner, forwarded: int, withheld: int = 0) -> None:
    """Waits until the gateway forwarded (and withheld) that many readings for the partner."""
    labels = {"partner": partner.partner_id, "type": READING}
    deadline = time.monotonic() + 60
    while True:
        text = platform.services["gateway"].metrics()
        sent = metric(text, "emeuse_gateway_events_forwarded_total", **labels)
        held = metric(text, "emeuse_gateway_events_withheld_total", **labels)
        if sent >= forwarded and held >= withheld:
            return
        assert time.monotonic() < deadline, f"gateway: {sent} forwarded, {held} withheld"
        time.sleep(0.3)


def run_partner(script: Path, env: dict[str, str], wanted: set[str], log: Path) -> list[dict]:
    """Runs the TypeScript partner until it handled `wanted`, stops it with SIGTERM (it must
    exit 0) and returns the JSON lines it printed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMEUSE_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["node", str(script)], env=clean | env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 90
            while not wanted <= handled(lines_of(log)):
                assert process.poll() is None, f"exited {process.returncode}:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"missing {wanted}:\n{log.read_text()}"
                time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            assert process.wait(STOP_GRACE_SECONDS) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return lines_of(log)


def lines_of(log: Path) -> list[dict]:
    return [
        json.loads(line)
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith('{"time"')
    ]


def handled(lines: list[dict]) -> set[str]:
    return {line["id"] for line in lines if line.get("event") == "event.handled"}


def committed_to_the_end(bootstrap: str, partner: str, group_suffix: str) -> bool:
    group = consumer_group_prefix(partner) + group_suffix
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    try:
        offsets = admin.list_group_offsets(group)[group]
        partitions = [TopicPartition(feed_topic(partner), p) for p in range(PARTITIONS)]
        ends = consumer.end_offsets(partitions)
    finally:
        admin.close()
        consumer.close()
    # A feed's end is the marker that commits the gateway's last transaction there, which
    # no consumer is given: the partner's commit is at it, or past it.
    return all(tp in offsets and offsets[tp].offset >= end - 1 for tp, end in ends.items() if end)


def assert_it_got_exactly_the_consented_events(feed: Feed, lines: list[dict]) -> None:
    assert handled(lines) == feed.consented
    assert not handled(lines) & feed.withheld
    got = [line for line in lines if line.get("event") == "event.handled"]
    assert all(line["type"] == READING and line["event_id"] for line in got)
    assert any(line.get("event") == "partner.stopped" for line in lines)
    printed = "\n".join(json.dumps(line) for line in lines)
    assert not any(pseudonym in printed for pseudonym in feed.pseudonyms)


def test_a_typescript_partner_reads_exactly_its_consented_events_with_its_credential(
    bootstrap, feed, consumer_script, tmp_path
):
    lines = run_partner(
        consumer_script,
        {
            "EMEUSE_PARTNER_ID": feed.partner.partner_id,
            "EMEUSE_PARTNER_CONFIG": str(feed.partner.settings),
        },
        feed.consented,
        tmp_path / "partner.log",
    )
    assert_it_got_exactly_the_consented_events(feed, lines)
    [started] = [line for line in lines if line.get("event") == "partner.started"]
    assert started["group"] == f"emeuse-partner.{feed.partner.partner_id}.typescript"
    assert committed_to_the_end(bootstrap, feed.partner.partner_id, "typescript")


def test_a_typescript_partner_reads_its_feed_over_sasl_ssl_with_the_ca_its_settings_name(
    bootstrap, secure_bootstrap, feed, consumer_script, tmp_path
):
    """The same credential on a SASL_SSL listener, trusting the CA the settings file names
    (`ssl.ca.location`), as when the partner listener moves to TLS."""
    settings = tmp_path / "partner-tls.properties"
    text = feed.partner.settings.read_text()
    lines = [
        line
        for line in text.splitlines()
        if not line.startswith(("bootstrap.servers=", "security.protocol="))
    ]
    settings.write_text(
        "\n".join(
            [
                *lines,
                f"bootstrap.servers={secure_bootstrap}",
                "security.protocol=SASL_SSL",
                f"ssl.ca.location={TLS / 'ca.crt'}",
            ]
        )
        + "\n"
    )
    lines = run_partner(
        consumer_script,
        {
            "EMEUSE_PARTNER_ID": feed.partner.partner_id,
            "EMEUSE_PARTNER_CONFIG": str(settings),
            "EMEUSE_PARTNER_GROUP": "typescript-tls",
        },
        feed.consented,
        tmp_path / "partner-tls.log",
    )
    assert_it_got_exactly_the_consented_events(feed, lines)
    assert committed_to_the_end(bootstrap, feed.partner.partner_id, "typescript-tls")


def test_without_a_settings_file_the_typescript_partner_refuses_to_start(consumer_script):
    """As the Python SDK: a forgotten variable never connects to the platform's own listener."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMEUSE_")}
    started = subprocess.run(
        ["node", str(consumer_script)],
        env=clean | {"EMEUSE_PARTNER_ID": new_partner_id()},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode == 2
    assert started.stderr.startswith("no credentials: set EMEUSE_PARTNER_CONFIG")
    assert started.stdout == ""


def test_a_record_the_typescript_partner_cannot_read_goes_to_its_dead_letters_and_it_goes_on(
    platform, bus, bootstrap, consumer_script, tmp_path_factory, tmp_path
):
    """Two records no handler can be given, between two readings of the same patient (so on
    the same partition): one without an envelope, one whose value is not the ReadingRecorded
    its ce_type says. Each is set aside with its reason on the partner's own dead-letter
    topic, and the reading after them is handled and everything committed."""
    partner = add_partner(
        bootstrap, tmp_path_factory.mktemp("ts-poison"), new_partner_id(), "--read", READING
    )
    try:
        patient = random_pseudonym()
        consent(platform, partner, patient, True)
        before = send(bus, reading(patient))
        gateway_passed(platform, partner, 1)
        # Written where only the gateway writes, as a faulty producer would.
        feed = feed_topic(partner.partner_id)
        no_envelope = bus.send(feed, patient.encode(), b"not an event", [])
        garbled = b"\xff\xff\xff"
        undecodable = bus.send(
            feed, patient.encode(), garbled, headers_for(READING_RECORDED, patient)
        )
        after = send(bus, reading(patient))
        gateway_passed(platform, partner, 2)
        assert no_envelope[0] == undecodable[0], "the patient's records share one partition"

        lines = run_partner(
            consumer_script,
            {
                "EMEUSE_PARTNER_ID": partner.partner_id,
                "EMEUSE_PARTNER_CONFIG": str(partner.settings),
            },
            {before, after},
            tmp_path / "partner.log",
        )
        assert handled(lines) == {before, after}
        set_aside = {
            (line["partition"], int(line["offset"])): line
            for line in lines
            if line.get("event") == "event.dead_lettered"
        }
        assert set(set_aside) == {no_envelope, undecodable}
        assert set_aside[no_envelope]["cause"] == "INVALID_ENVELOPE"
        assert set_aside[no_envelope]["reason"].startswith("missing header(s) ce_specversion")
        assert set_aside[undecodable]["cause"] == "UNDECODABLE"
        assert set_aside[undecodable]["reason"].startswith(f"value is not a {READING}")
        [stopped] = [line for line in lines if line.get("event") == "partner.stopped"]
        assert (stopped["handled"], stopped["dead_lettered"]) == (2, 2)
        assert patient not in json.dumps(lines)
        assert committed_to_the_end(bootstrap, partner.partner_id, "typescript")

        letters = set_aside_letters(partner, 2)
        assert set(letters) == {no_envelope, undecodable}
        assert letters[no_envelope].cause == DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_ENVELOPE
        assert letters[undecodable].cause == DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE
        assert letters[undecodable].reason.startswith(f"value is not a {READING}: ")
        for letter in letters.values():
            assert letter.consumer == f"partner/{partner.partner_id}"
            assert letter.source_topic == feed
            # Its original is not copied (this client cannot look for direct identifiers):
            # its size and hash say which record it was, the feed still holds it.
            assert letter.original_withheld and not letter.original_value
            assert "original withheld" in letter.reason
        assert letters[undecodable].original_value_size == len(garbled)
        assert letters[undecodable].original_value_sha256 == hashlib.sha256(garbled).digest()
    finally:
        remove_partner(bootstrap, partner)


def set_aside_letters(partner: Partner, count: int) -> dict[tuple[int, int], MessageDeadLettered]:
    """The partner's own letters (consumer partner/<id>) by the feed partition and offset
    they set aside, read with its credential, once `count` are there."""
    consumer = partner.consumer()
    topics = [TopicPartition(dead_letter_topic(partner.partner_id), p) for p in range(PARTITIONS)]
    consumer.assign(topics)
    consumer.seek_to_beginning(*topics)
    found: dict[tuple[int, int], MessageDeadLettered] = {}
    deadline = time.monotonic() + 30
    try:
        while len(found) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    headers = env.header_map(record.headers)
                    assert env.from_headers(headers).source == f"partner/{partner.partner_id}"
                    letter = MessageDeadLettered.FromString(record.value)
                    found[(letter.source_partition, letter.source_offset)] = letter
    finally:
        consumer.close()
    return found


def published(device: Path, partner: Partner, patient: str, mg_dl: str) -> dict:
    """The TypeScript device run once with the partner's settings file: the line it printed
    for the reading it sent (its ids, never the pseudonym)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMEUSE_")}
    sent = subprocess.run(
        ["node", str(device), patient, mg_dl, "--territory", "55"],
        env=clean
        | {"EMEUSE_PARTNER_ID": partner.partner_id, "EMEUSE_PARTNER_CONFIG": str(partner.settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert patient not in sent.stdout + sent.stderr
    [line] = [json.loads(x) for x in sent.stdout.splitlines() if '"event.published"' in x]
    return line


def test_a_typescript_partner_publishes_a_reading_admitted_with_consent_refused_without(
    platform, bus, bootstrap, consumer_script, tmp_path_factory
):
    device = consumer_script.parent / "device.js"
    publisher = add_partner(
        bootstrap, tmp_path_factory.mktemp("ts-device"), new_partner_id(), "--publish", READING
    )
    try:
        consenting, never = random_pseudonym(), random_pseudonym()
        enrol(platform, care_plan(consenting, "DIABETES", GLUCOSE_BAND))
        consent(platform, publisher, consenting, True)
        admitted = published(device, publisher, consenting, "104")
        refused = published(device, publisher, never, "104")

        # On the platform's topic, with the envelope the platform requires: the ids the
        # device printed, the patient as key and subject, the partner as source.
        [record] = bus.wait_for(
            READING_RECORDED.name,
            lambda r: r.get("event", {}).get("reading_id") == admitted["reading_id"],
        )
        headers = record["headers"]
        assert record["key"] == consenting
        assert headers["ce_id"] == admitted["event_id"]
        assert headers["ce_correlationid"] == admitted["event_id"]  # it starts a story
        assert headers["ce_type"] == READING and headers["ce_schemaversion"] == "v1"
        assert headers["ce_source"] == f"partner/{publisher.partner_id}"
        assert headers["ce_subject"] == consenting
        assert (headers["ce_territory"], headers["ce_experiment"]) == ("55", "integration-tests")
        assert headers["content-type"] == "application/protobuf"
        # chronic accepted it: the reading is in the patient's care.
        summary = chronic_api.GetPatientSummaryRequest(patient_pseudonym=consenting)
        deadline = time.monotonic() + 30
        while not Chronic(platform).GetPatientSummary(summary).latest_values:
            assert time.monotonic() < deadline, "chronic never took the partner's reading"
            time.sleep(0.2)
        [latest] = Chronic(platform).GetPatientSummary(summary).latest_values
        assert (latest.loinc_code, latest.value) == ("2339-0", 104)

        # The patient who never consented: refused with the documented reason, sent back on
        # the partner's dead letters under the event id the device printed.
        [letter] = dead_letters(publisher, 1, refused_by="gateway")
        assert letter.cause == DeadLetterCause.DEAD_LETTER_CAUSE_NO_CONSENT
        assert letter.reason == (
            f"no consent: the patient has not consented to partner {publisher.partner_id!r}"
        )
        assert letter.source_topic == inbound_topic(publisher.partner_id)
        assert letter.original_headers[env.H_ID].decode() == refused["event_id"]
        on_platform = {
            r["event"].get("reading_id")
            for r in bus.all_records(READING_RECORDED.name)
            if r["key"] in (consenting, never)
        }
        assert on_platform == {admitted["reading_id"]}
    finally:
        remove_partner(bootstrap, publisher)


def test_the_typescript_device_refuses_what_the_platform_would_refuse_before_sending(
    consumer_script, tmp_path
):
    """Checked before connecting, from the settings file (its grants and experiments): the
    broker it names does not even listen, so exit 2 means nothing was sent."""
    device = consumer_script.parent / "device.js"
    settings = tmp_path / "partner.properties"

    def refusal(publishes: str, *argv: str, **env_vars: str) -> str:
        settings.write_text(
            "bootstrap.servers=127.0.0.1:1\nsecurity.protocol=SASL_PLAINTEXT\n"
            "sasl.mechanism=SCRAM-SHA-512\nsasl.username=partner-ts-device\nsasl.password=x\n"
            f"#emeuse.publish={publishes}\n#emeuse.experiments=integration-tests\n"
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith("EMEUSE_")}
        refused = subprocess.run(
            ["node", str(device), *argv],
            env=clean
            | {"EMEUSE_PARTNER_ID": "ts-device", "EMEUSE_PARTNER_CONFIG": str(settings)}
            | env_vars,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stdout == ""
        return refused.stderr

    patient = random_pseudonym()
    assert "patient_pseudonym is not a platform pseudonym" in refusal(READING, "Jean Dupont", "104")
    assert f"{READING} is not granted to partner" in refusal("", patient, "104")
    assert 'experiment "other" is not one of partner' in refusal(
        READING, patient, "104", "--experiment", "other"
    )
    assert "EMEUSE_EXPERIMENT=other is not one of your experiments" in refusal(
        READING, patient, "104", EMEUSE_EXPERIMENT="other"
    )
