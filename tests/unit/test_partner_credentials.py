"""The settings file a partner receives: complete, private, and read back the same."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from emeuse.partner_credentials import (
    ClientConfig,
    CredentialsFileError,
    new_password,
    parse,
    read,
    write,
)

CONFIG = ClientConfig(bootstrap="127.0.0.1:9094", username="partner-glucoflow", password="s3cret")


def test_the_file_holds_what_a_client_needs_to_log_in():
    lines = [line for line in CONFIG.render("glucoflow").splitlines() if not line.startswith("#")]
    assert lines == [
        "bootstrap.servers=127.0.0.1:9094",
        "security.protocol=SASL_PLAINTEXT",
        "sasl.mechanism=SCRAM-SHA-512",
        "sasl.username=partner-glucoflow",
        "sasl.password=s3cret",
    ]


def test_the_file_is_written_for_its_owner_only(tmp_path):
    path = tmp_path / "partners" / "glucoflow.properties"
    write(path, "glucoflow", CONFIG)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read(path) == CONFIG


def test_rewriting_the_file_replaces_it(tmp_path):
    path = tmp_path / "glucoflow.properties"
    write(path, "glucoflow", CONFIG)
    newer = ClientConfig(CONFIG.bootstrap, CONFIG.username, "other")
    write(path, "glucoflow", newer)
    assert read(path).password == "other"
    assert [p.name for p in tmp_path.iterdir()] == ["glucoflow.properties"]


def test_kafka_python_gets_sasl_scram_options():
    assert CONFIG.kafka_python_options() == {
        "bootstrap_servers": ["127.0.0.1:9094"],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "partner-glucoflow",
        "sasl_plain_password": "s3cret",
    }


def test_the_password_never_shows_in_a_repr():
    assert "s3cret" not in repr(CONFIG)


def test_an_incomplete_file_names_what_is_missing():
    with pytest.raises(CredentialsFileError, match=r"sasl\.password"):
        parse(
            "bootstrap.servers=127.0.0.1:9094\nsecurity.protocol=SASL_PLAINTEXT\n"
            "sasl.mechanism=SCRAM-SHA-512\nsasl.username=partner-x\n"
        )


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CredentialsFileError, match="cannot read"):
        read(tmp_path / "nothing.properties")


def test_passwords_are_long_and_never_repeat():
    passwords = {new_password() for _ in range(100)}
    assert len(passwords) == 100
    assert min(map(len, passwords)) >= 40


def test_read_gives_a_client_config_whose_options_open_a_kafka_python_client(tmp_path):
    path = tmp_path / "glucoflow.properties"
    write(path, "glucoflow", CONFIG)

    config = read(path)

    assert isinstance(config, ClientConfig)
    options = config.kafka_python_options()
    # kafka-python accepts every option (it checks names before connecting to anything).
    assert set(options) <= set(KafkaConsumer.DEFAULT_CONFIG)


def test_every_doc_mentioning_read_says_it_returns_a_client_config():
    root = Path(__file__).resolve().parents[2]
    paragraphs = [
        paragraph
        for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]
        for paragraph in doc.read_text(encoding="utf-8").split("\n\n")
        if "partner_credentials.read(" in paragraph
    ]
    assert paragraphs, "the docs say how to read a partner's settings file"
    for paragraph in paragraphs:
        assert "ClientConfig" in paragraph and "kafka_python_options()" in paragraph, paragraph


def test_the_file_lists_the_grants_as_comments_and_reads_them_back(tmp_path):
    granted = ClientConfig(
        bootstrap="127.0.0.1:9094",
        username="partner-glucoflow",
        password="s3cret",
        publishes=("emeuse.chronic.v1.ReadingRecorded",),
        experiments=("glucoflow-pilot",),
    )
    text = granted.render("glucoflow")
    # Comments to every Kafka client: librdkafka refuses a property it does not know.
    assert "#emeuse.publish=emeuse.chronic.v1.ReadingRecorded" in text.splitlines()
    path = tmp_path / "glucoflow.properties"
    write(path, "glucoflow", granted)
    back = read(path)
    assert back.publishes == ("emeuse.chronic.v1.ReadingRecorded",)
    assert back.experiments == ("glucoflow-pilot",)
    assert parse(CONFIG.render("glucoflow")).publishes is None  # an older file: none listed
