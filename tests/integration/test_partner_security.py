"""A partner's credential on the real broker: its own topics and groups, nothing else.

Partners log in with SCRAM-SHA-512 on the partner listener (EMEUSE_KAFKA_PARTNER_BOOTSTRAP);
the platform itself uses the PLAINTEXT listener (EMEUSE_KAFKA_BOOTSTRAP) with full access.
Every refusal asserted here comes from the broker's authorizer, not from a client check.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    AuthorizationError,
    GroupAuthorizationFailedError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)

from emeuse import partner_credentials
from emeuse.partners import (
    consumer_group_prefix,
    dead_letter_topic,
    feed_topic,
    inbound_topic,
    kafka_user,
)
from emeuse.registry import CONSENT_CHANGED, PARTNER_REGISTERED, READING_RECORDED
from tests.integration.harness import emeuse

PARTNER_BOOTSTRAP = os.environ.get("EMEUSE_KAFKA_PARTNER_BOOTSTRAP", "127.0.0.1:9094")
READING = "emeuse.chronic.v1.ReadingRecorded"
ALERT = "emeuse.chronic.v1.AlertRaised"


@dataclass(frozen=True)
class Partner:
    partner_id: str
    settings: Path
    added: Any

    def options(self, **extra: Any) -> dict[str, Any]:
        options = partner_credentials.read(self.settings).kafka_python_options()
        return {**options, "request_timeout_ms": 5000, "bootstrap_timeout_ms": 5000, **extra}

    def consumer(self, **extra: Any) -> KafkaConsumer:
        return KafkaConsumer(**self.options(enable_auto_commit=False, **extra))

    def producer(self) -> KafkaProducer:
        return KafkaProducer(**self.options(max_block_ms=5000))


def new_partner_id() -> str:
    return f"sec-{secrets.token_hex(4)}"


def add_partner(bootstrap: str, secrets_dir: Path, partner_id: str, *grants: str) -> Partner:
    added = emeuse(
        "partner",
        "add",
        partner_id,
        "--purpose",
        "remote-monitoring",
        "--experiment",
        "integration-tests",
        *grants,
        "--territory",
        "55",
        "--secrets-dir",
        str(secrets_dir),
        "--partner-bootstrap",
        PARTNER_BOOTSTRAP,
        bootstrap=bootstrap,
    )
    assert added.returncode == 0, added.stderr
    return Partner(partner_id, secrets_dir / f"{partner_id}.properties", added)


def remove_partner(bootstrap: str, partner: Partner) -> Any:
    return emeuse(
        "partner",
        "remove",
        partner.partner_id,
        "--territory",
        "55",
        "--secrets-dir",
        str(partner.settings.parent),
        bootstrap=bootstrap,
    )


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("partner-secrets")


@pytest.fixture(scope="module")
def glucose(bootstrap: str, secrets_dir: Path) -> Iterator[Partner]:
    partner = add_partner(
        bootstrap, secrets_dir, new_partner_id(), "--read", READING, "--publish", READING
    )
    yield partner
    remove_partner(bootstrap, partner)


@pytest.fixture(scope="module")
def falls(bootstrap: str, secrets_dir: Path) -> Iterator[Partner]:
    partner = add_partner(bootstrap, secrets_dir, new_partner_id(), "--read", ALERT)
    yield partner
    remove_partner(bootstrap, partner)


@pytest.fixture(scope="module")
def platform_producer(bootstrap: str) -> Iterator[KafkaProducer]:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    yield producer
    producer.close()


def read_all(consumer: KafkaConsumer, wanted: int, polls: int = 30) -> list[Any]:
    records: list[Any] = []
    for _ in range(polls):
        for batch in consumer.poll(timeout_ms=300).values():
            records.extend(batch)
        if len(records) >= wanted:
            break
    return records


def test_add_writes_a_private_settings_file_and_never_prints_the_password(glucose):
    config = partner_credentials.read(glucose.settings)
    assert stat.S_IMODE(glucose.settings.stat().st_mode) == 0o600
    assert config.username == kafka_user(glucose.partner_id)
    assert config.bootstrap == PARTNER_BOOTSTRAP
    assert config.password not in glucose.added.stdout
    assert str(glucose.settings) in glucose.added.stdout


def test_add_registers_the_partner_on_the_compacted_registry(bootstrap, glucose):
    listed = emeuse("partner", "list", "--json", bootstrap=bootstrap)
    assert listed.returncode == 0, listed.stderr
    rows = {row["partner_id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    row = rows[glucose.partner_id]
    assert row["active"] is True
    assert row["purposes"] == ["remote-monitoring"]
    assert row["readable_event_types"] == [READING]
    assert row["publishable_event_types"] == [READING]
    assert row["feed_topic"] == feed_topic(glucose.partner_id)


def test_a_read_grant_is_recorded_in_the_registry(bootstrap, glucose):
    granted = emeuse(
        "partner",
        "grant",
        glucose.partner_id,
        "--read",
        ALERT,
        "--territory",
        "55",
        bootstrap=bootstrap,
    )
    assert granted.returncode == 0, granted.stderr
    listed = emeuse("partner", "list", "--json", bootstrap=bootstrap)
    rows = {row["partner_id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows[glucose.partner_id]["readable_event_types"] == [READING, ALERT]


def test_a_partner_reads_its_feed_in_a_consumer_group_of_its_own(glucose, platform_producer):
    feed = feed_topic(glucose.partner_id)
    platform_producer.send(feed, key=b"psn-x", value=b"for the partner").get(timeout=15)
    consumer = glucose.consumer(
        group_id=f"{consumer_group_prefix(glucose.partner_id)}test", auto_offset_reset="earliest"
    )
    try:
        consumer.subscribe([feed])
        records = read_all(consumer, 1)
        assert [r.value for r in records] == [b"for the partner"]
        consumer.commit()
        committed = {
            tp: consumer.committed(tp) for tp in consumer.assignment() if consumer.committed(tp)
        }
        assert sum(committed.values()) == 1
    finally:
        consumer.close()


def test_a_partner_cannot_join_a_group_outside_its_prefix(glucose):
    consumer = glucose.consumer(group_id="emeuse-chronic", auto_offset_reset="earliest")
    try:
        consumer.subscribe([feed_topic(glucose.partner_id)])
        with pytest.raises(GroupAuthorizationFailedError):
            read_all(consumer, 1, polls=10)
    finally:
        consumer.close()


def test_a_partner_sees_only_its_own_topics(glucose):
    consumer = glucose.consumer()
    try:
        # Metadata shows only what its ACLs allow it to describe.
        assert consumer.topics() == {
            feed_topic(glucose.partner_id),
            inbound_topic(glucose.partner_id),
            dead_letter_topic(glucose.partner_id),
        }
    finally:
        consumer.close()


def test_a_partner_cannot_read_another_partners_feed(glucose, falls, platform_producer):
    other = feed_topic(falls.partner_id)
    platform_producer.send(other, key=b"psn-y", value=b"not for glucose").get(timeout=15)
    consumer = glucose.consumer(
        group_id=f"{consumer_group_prefix(glucose.partner_id)}snoop", auto_offset_reset="earliest"
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            consumer.end_offsets([TopicPartition(other, 0)])
        consumer.subscribe([other])
        assert read_all(consumer, 1, polls=8) == []
    finally:
        consumer.close()


@pytest.mark.parametrize(
    "topic", [READING_RECORDED.name, CONSENT_CHANGED.name, PARTNER_REGISTERED.name]
)
def test_a_partner_cannot_read_the_platforms_topics(glucose, topic):
    consumer = glucose.consumer()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            consumer.beginning_offsets([TopicPartition(topic, 0)])
    finally:
        consumer.close()


def test_a_partner_writes_its_inbound_topic(glucose, bootstrap):
    producer = glucose.producer()
    try:
        sent = producer.send(inbound_topic(glucose.partner_id), key=b"k", value=b"reading")
        sent.get(timeout=15)
    finally:
        producer.close()
    platform = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(inbound_topic(glucose.partner_id), p)
            for p in platform.partitions_for_topic(inbound_topic(glucose.partner_id))
        ]
        assert sum(platform.end_offsets(partitions).values()) == 1
    finally:
        platform.close()


def test_a_partner_reads_and_writes_its_dead_letter_topic(glucose):
    topic = dead_letter_topic(glucose.partner_id)
    producer = glucose.producer()
    try:
        producer.send(topic, key=b"k", value=b"set aside").get(timeout=15)
    finally:
        producer.close()
    consumer = glucose.consumer(auto_offset_reset="earliest")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        # The gateway may have set aside this partner's malformed inbound records here too.
        assert b"set aside" in [r.value for r in read_all(consumer, 100, polls=10)]
    finally:
        consumer.close()


@pytest.mark.parametrize("target", ["platform", "other-inbound", "own-feed"])
def test_a_partner_cannot_write_any_other_topic(glucose, falls, target):
    topic = {
        "platform": READING_RECORDED.name,
        "other-inbound": inbound_topic(falls.partner_id),
        "own-feed": feed_topic(glucose.partner_id),
    }[target]
    producer = glucose.producer()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, key=b"k", value=b"forged").get(timeout=15)
    finally:
        producer.close(timeout=5)


def test_a_partner_cannot_create_topics(glucose):
    admin = KafkaAdminClient(**glucose.options())
    try:
        with pytest.raises(AuthorizationError):
            admin.create_topics([NewTopic(f"emeuse-partner.{glucose.partner_id}.extra", 1, 1)])
    finally:
        admin.close()


def test_removing_a_partner_deletes_its_credential(bootstrap, secrets_dir, caplog):
    partner = add_partner(bootstrap, secrets_dir, new_partner_id(), "--read", READING)
    config = partner_credentials.read(partner.settings)
    session = partner.consumer()
    own_feed = [TopicPartition(feed_topic(partner.partner_id), 0)]
    assert session.end_offsets(own_feed)

    removed = remove_partner(bootstrap, partner)
    assert removed.returncode == 0, removed.stderr
    # A session opened before the removal stays connected, but the broker refuses it.
    with pytest.raises(TopicAuthorizationFailedError):
        session.end_offsets(own_feed)
    session.close()
    assert "kept for audit" in removed.stdout
    assert not partner.settings.exists()
    caplog.set_level(logging.ERROR, logger="kafka")
    # Refused at each try until the bootstrap times out; 10 s, so that on a busy machine
    # at least one SCRAM exchange completes and is refused (3 s could pass in connecting).
    with pytest.raises(KafkaTimeoutError):
        KafkaConsumer(
            **config.kafka_python_options(), request_timeout_ms=5000, bootstrap_timeout_ms=10_000
        )
    assert "SaslAuthenticationFailedError" in caplog.text

    listed = emeuse("partner", "list", "--json", "--all", bootstrap=bootstrap)
    rows = {row["partner_id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows[partner.partner_id]["active"] is False
    assert partner.partner_id not in emeuse("partner", "list", bootstrap=bootstrap).stdout
