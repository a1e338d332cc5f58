"""A second partner in another language: the TypeScript example (examples/typescript_partner,
kafkajs and the generated @emeuse/schemas) reads its consent-filtered feed with its own
credential, decodes the envelope and the protobuf payload, and commits what it handled.

The partner is added with `emeuse partner add` and the gateway fills its feed from the
platform's topics under the patients' consents, as in production.
"""

from __future__ import annotations

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

from emeuse.partners import PARTITIONS, consumer_group_prefix, feed_topic
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.conftest import TLS
from tests.integration.harness import ROOT, metric
from tests.integration.test_partner_gateway import consent, reading, send
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
    """The example compiled as `npm run build` does (tsc, from the npm workspace)."""
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
    labels = {"partner": partner.partner_id, "type": READING}
    deadline = time.monotonic() + 60
    while True:
        text = platform.services["gateway"].metrics()
        forwarded = metric(text, "emeuse_gateway_events_forwarded_total", **labels)
        held = metric(text, "emeuse_gateway_events_withheld_total", **labels)
        if forwarded >= len(consented) and held >= len(withheld):
            break
        assert time.monotonic() < deadline, f"gateway: {forwarded} forwarded, {held} withheld"
        time.sleep(0.3)
    yield Feed(partner, consented, withheld, (consenting, other))
    remove_partner(bootstrap, partner)


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
