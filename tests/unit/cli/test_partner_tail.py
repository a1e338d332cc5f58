"""`emeuse tail` with a partner's settings file: its own feed and dead letters, decoded."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.cli.kafka import partner_consumer
from emeuse.cli.main import build_parser, cmd_tail, main
from emeuse.cli.records import describe
from emeuse.partner_credentials import ClientConfig, write
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import READING_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.pseudonym import random_pseudonym

FEED = "emeuse-partner.glucoflow.feed"
LETTERS = "emeuse-partner.glucoflow.dead-letter"
PATIENT = random_pseudonym()
INR_40 = ReadingRecorded(
    reading_id="r-40", patient_pseudonym=PATIENT, loinc_code="34714-6", value=40, unit="{INR}"
)


def headers_for(spec, subject: str) -> list[tuple[str, bytes]]:
    envelope = env.new_envelope(
        event_type=spec.type_name,
        source="partner/glucoflow",
        subject_pseudonym=subject,
        territory=env.territory_from_code("55"),
        experiment_id="glucoflow-pilot",
        schema_version=spec.schema_version,
        occurred_at=datetime.now(UTC),
    )
    return env.to_headers(envelope)


def letter() -> MessageDeadLettered:
    return MessageDeadLettered(
        cause=DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT,
        reason="refused by chronic's rules: INR (point of care) 40 {INR} is impossible",
        source_topic="emeuse-partner.glucoflow.inbound",
        original_value=INR_40.SerializeToString(),
        original_headers=dict(headers_for(READING_RECORDED, PATIENT)),
    )


def consumer_record(topic: str, value: bytes, headers) -> ConsumerRecord:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        leader_epoch=None,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=PATIENT.encode(),
        value=value,
        headers=headers,
        checksum=None,
        serialized_key_size=len(PATIENT),
        serialized_value_size=len(value),
        serialized_header_size=-1,
    )


def test_a_partners_feed_record_is_decoded_by_its_type():
    shown = describe(
        FEED,
        0,
        0,
        PATIENT.encode(),
        INR_40.SerializeToString(),
        headers_for(READING_RECORDED, PATIENT),
    )
    assert "error" not in shown
    assert shown["type"] == READING_RECORDED.type_name
    assert shown["event"]["reading_id"] == "r-40"


def test_a_partners_dead_letter_shows_the_reason_and_the_event_it_set_aside():
    refused = letter()
    shown = describe(LETTERS, 0, 0, PATIENT.encode(), refused.SerializeToString(), [])
    assert "40 {INR} is impossible" in shown["event"]["reason"]
    assert shown["original_event"]["reading_id"] == "r-40"
    # The id the partner sent the event with, in clear (the headers are bytes, base64).
    assert shown["original_event_id"] == refused.original_headers[env.H_ID].decode()


class OneRecordConsumer:
    def __init__(self, topic: str, value: bytes, headers) -> None:
        self.record = consumer_record(topic, value, headers)
        self.asked: list[str] = []

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.asked.append(topic)
        return {0}

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        pass

    def poll(self, timeout_ms: int):
        return {TopicPartition(self.record.topic, 0): [self.record]}

    def close(self) -> None:
        pass


@pytest.fixture
def settings(tmp_path):
    path = tmp_path / "glucoflow.properties"
    write(path, "glucoflow", ClientConfig("127.0.0.1:9094", "partner-glucoflow", "s3cret"))
    return str(path)


def test_tail_with_a_partners_settings_reads_its_dead_letters_with_its_credential(capsys, settings):
    consumer = OneRecordConsumer(LETTERS, letter().SerializeToString(), [])
    used = []

    def connect_partner(config):
        used.append(config)
        return consumer

    args = build_parser().parse_args(
        ["tail", "dead-letter", "--config", settings, "--from-beginning", "--max", "1"]
    )
    assert cmd_tail(args, connect=pytest.fail, connect_partner=connect_partner) == 0
    [config] = used
    assert (config.username, config.bootstrap) == ("partner-glucoflow", "127.0.0.1:9094")
    assert consumer.asked == [LETTERS]
    shown = json.loads(capsys.readouterr().out)
    assert shown["original_event"]["reading_id"] == "r-40"


@pytest.mark.parametrize("topic", ["inbound", READING_RECORDED.name, "emeuse-partner.other.feed"])
def test_tail_with_a_partners_settings_refuses_what_its_credential_cannot_read(
    capsys, settings, topic
):
    assert main(["tail", topic, "--config", settings]) == 1
    err = capsys.readouterr().err
    assert "partner glucoflow reads only its feed and dead letters" in err


def test_an_unknown_topic_is_refused_naming_both_kinds(capsys):
    assert main(["tail", "emeuse.nowhere.v1", "--bootstrap", "127.0.0.1:1"]) == 1
    assert "nor a partner's topic" in capsys.readouterr().err


def test_the_partner_consumer_logs_in_with_the_settings_file(monkeypatch):
    made = {}

    class Recording:
        def __init__(self, **options):
            made.update(options)

    monkeypatch.setattr("emeuse.cli.kafka.KafkaConsumer", Recording)
    partner_consumer(ClientConfig("127.0.0.1:9094", "partner-glucoflow", "s3cret"))
    assert made["bootstrap_servers"] == ["127.0.0.1:9094"]
    assert (made["security_protocol"], made["sasl_plain_username"]) == (
        "SASL_SSL",
        "partner-glucoflow",
    )
    assert made["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert made["isolation_level"] == "read_committed" and not made["enable_auto_commit"]
