"""The settings file a partner receives: complete, private, and read back the same."""

from __future__ import annotations

import ssl
import stat
import subprocess
from dataclasses import replace
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

CA = Path("/srv/emeuse/tls/ca.crt")
CONFIG = ClientConfig(
    bootstrap="127.0.0.1:9094", username="partner-glucoflow", password="s3cret", ca_file=CA
)
# A test broker's partner listener (scripts/broker-env.sh): SCRAM without TLS.
LOOPBACK = replace(CONFIG, security_protocol="SASL_PLAINTEXT", ca_file=None)


def test_the_file_holds_what_a_client_needs_to_log_in_over_tls():
    lines = [line for line in CONFIG.render("glucoflow").splitlines() if not line.startswith("#")]
    assert lines == [
        "bootstrap.servers=127.0.0.1:9094",
        "security.protocol=SASL_SSL",
        f"ssl.ca.location={CA}",
        "sasl.mechanism=SCRAM-SHA-512",
        "sasl.username=partner-glucoflow",
        "sasl.password=s3cret",
    ]
    assert f"ssl.truststore.location={CA}" in CONFIG.render("glucoflow")  # Java's, in a comment


def test_a_loopback_listeners_file_names_no_ca():
    text = LOOPBACK.render("glucoflow")
    assert "security.protocol=SASL_PLAINTEXT" in text and "ssl." not in text
    assert parse(text).ca_file is None


def test_the_file_is_written_for_its_owner_only(tmp_path, ca):
    path = tmp_path / "partners" / "glucoflow.properties"
    config = replace(CONFIG, ca_file=ca)
    write(path, "glucoflow", config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read(path) == config


def test_a_file_naming_a_ca_that_is_not_there_is_refused_with_its_path(tmp_path):
    path = tmp_path / "glucoflow.properties"
    write(path, "glucoflow", CONFIG)
    with pytest.raises(CredentialsFileError, match=f"ssl.ca.location={CA}: no such file"):
        read(path)


def test_rewriting_the_file_replaces_it(tmp_path):
    path = tmp_path / "glucoflow.properties"
    write(path, "glucoflow", CONFIG)
    newer = ClientConfig(CONFIG.bootstrap, CONFIG.username, "other")
    write(path, "glucoflow", newer)
    assert read(path).password == "other"
    assert [p.name for p in tmp_path.iterdir()] == ["glucoflow.properties"]


def test_kafka_python_gets_sasl_scram_options():
    assert LOOPBACK.kafka_python_options() == {
        "bootstrap_servers": ["127.0.0.1:9094"],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "partner-glucoflow",
        "sasl_plain_password": "s3cret",
    }


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    """A CA certificate of its own (the partner listener's, as scripts/certs.sh makes)."""
    ca = tmp_path / "ca.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test CA",
            "-keyout",
            str(tmp_path / "ca.key"),
            "-out",
            str(ca),
        ],
        check=True,
        capture_output=True,
    )
    return ca


def test_over_sasl_ssl_clients_check_the_brokers_certificate_against_the_files_ca(ca):
    options = replace(CONFIG, ca_file=ca).kafka_python_options()
    context = options.pop("ssl_context")
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_plain_username"] == "partner-glucoflow"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test CA"),),)]


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


def test_read_gives_a_client_config_whose_options_open_a_kafka_python_client(tmp_path, ca):
    path = tmp_path / "glucoflow.properties"
    write(path, "glucoflow", replace(CONFIG, ca_file=ca))

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
