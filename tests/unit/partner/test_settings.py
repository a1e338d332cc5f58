"""A partner's settings: from the environment and the properties file operations hand out."""

from __future__ import annotations

import ssl
import subprocess

import pytest

from emeuse.partner.settings import RetryPolicy, load_partner_settings
from emeuse.partner_credentials import ClientConfig
from emeuse.partner_credentials import write as write_settings
from emeuse.runtime.settings import SettingsError


def write(tmp_path, text: str):
    path = tmp_path / "glucoflow.properties"
    path.write_text(text)
    return str(path)


def test_defaults_read_the_partners_feed_from_the_local_broker_in_its_own_group():
    settings = load_partner_settings({"EMEUSE_PARTNER_LOCAL": "1"}, "glucoflow")
    assert settings.partner_id == "glucoflow"
    assert settings.connection.bootstrap == ("127.0.0.1:9092",)
    assert settings.connection.client_options() == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "PLAINTEXT",
    }
    assert settings.group_id == "emeuse-partner.glucoflow.sdk"
    assert settings.source == "partner/glucoflow"
    assert settings.retry == RetryPolicy()


def test_the_environment_names_the_partner_and_overrides_the_id_in_code():
    env = {
        "EMEUSE_PARTNER_ID": "glucoflow-staging",
        "EMEUSE_KAFKA_BOOTSTRAP": "k1:9094",
        "EMEUSE_PARTNER_LOCAL": "1",
    }
    settings = load_partner_settings(env, "glucoflow")
    assert settings.partner_id == "glucoflow-staging"
    assert settings.connection.bootstrap == ("k1:9094",)


def test_the_properties_file_from_operations_gives_a_scram_connection(tmp_path):
    config = write(
        tmp_path,
        "# written by emeuse partner add\n"
        "bootstrap.servers=127.0.0.1:9094\n"
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.username=partner-glucoflow\n"
        "sasl.password=s3cr=t\n",
    )
    env = {"EMEUSE_PARTNER_CONFIG": config, "EMEUSE_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}
    settings = load_partner_settings(env, "glucoflow")
    assert settings.connection.client_options() == {
        "bootstrap_servers": ["127.0.0.1:9094"],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "partner-glucoflow",
        "sasl_plain_password": "s3cr=t",
    }
    assert "s3cr" not in repr(settings)


def test_the_file_emeuse_partner_add_writes_connects_over_tls_checked_against_its_ca(tmp_path):
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
            "/CN=partner listener CA",
            "-keyout",
            str(tmp_path / "ca.key"),
            "-out",
            str(ca),
        ],
        check=True,
        capture_output=True,
    )
    file = ClientConfig("127.0.0.1:9094", "partner-glucoflow", "s3cret", ca_file=ca)
    path = tmp_path / "glucoflow.properties"
    write_settings(path, "glucoflow", file)
    settings = load_partner_settings({"EMEUSE_PARTNER_CONFIG": str(path)}, "glucoflow")
    options = settings.connection.client_options()
    context = options.pop("ssl_context")
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_plain_username"] == "partner-glucoflow"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "partner listener CA"),),)


def test_a_properties_file_naming_a_missing_ca_is_refused(tmp_path):
    config = write(
        tmp_path,
        "bootstrap.servers=127.0.0.1:9094\nsecurity.protocol=SASL_SSL\n"
        f"ssl.ca.location={tmp_path / 'none.crt'}\n"
        "sasl.username=partner-glucoflow\nsasl.password=x\n",
    )
    with pytest.raises(SettingsError, match=r"ssl\.ca\.location=.*none\.crt.*no such file"):
        load_partner_settings({"EMEUSE_PARTNER_CONFIG": config}, "glucoflow")


def test_a_plaintext_properties_file_needs_no_credential(tmp_path):
    config = write(tmp_path, "bootstrap.servers = 127.0.0.1:9092\nsecurity.protocol=PLAINTEXT\n")
    settings = load_partner_settings({"EMEUSE_PARTNER_CONFIG": config}, "glucoflow")
    assert settings.connection.security_protocol == "PLAINTEXT"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("security.protocol=PLAINTEXT\n", "no bootstrap.servers"),
        ("bootstrap.servers=h:1\nsecurity.protocol=SSL\n", "security.protocol='SSL'"),
        (
            "bootstrap.servers=h:1\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\n",
            "sasl.mechanism='GSSAPI'",
        ),
        (
            "bootstrap.servers=h:1\nsecurity.protocol=SASL_PLAINTEXT\nsasl.username=u\n",
            "needs sasl.password",
        ),
        ("bootstrap.servers\n", "expected key=value"),
    ],
)
def test_a_wrong_properties_file_fails_naming_the_key(tmp_path, text, named):
    with pytest.raises(SettingsError, match=named):
        load_partner_settings({"EMEUSE_PARTNER_CONFIG": write(tmp_path, text)}, "glucoflow")


def test_a_missing_properties_file_fails_naming_it(tmp_path):
    with pytest.raises(SettingsError, match="EMEUSE_PARTNER_CONFIG"):
        load_partner_settings({"EMEUSE_PARTNER_CONFIG": str(tmp_path / "none")}, "glucoflow")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "no partner id"),
        ({"EMEUSE_PARTNER_ID": "Gluco Flow"}, "EMEUSE_PARTNER_ID"),
        ({"EMEUSE_PARTNER_ID": "glucoflow", "EMEUSE_PARTNER_RETRIES": "-1"}, "RETRIES"),
        ({"EMEUSE_PARTNER_ID": "glucoflow", "EMEUSE_PARTNER_BACKOFF_S": "x"}, "BACKOFF_S"),
        ({"EMEUSE_PARTNER_ID": "glucoflow", "EMEUSE_PARTNER_OFFSET_RESET": "now"}, "RESET"),
        ({"EMEUSE_PARTNER_ID": "glucoflow", "EMEUSE_PARTNER_METRICS_PORT": "99999"}, "PORT"),
        ({"EMEUSE_PARTNER_ID": "glucoflow", "EMEUSE_PARTNER_GROUP": "A B"}, "GROUP"),
    ],
)
def test_a_wrong_setting_fails_naming_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        load_partner_settings({"EMEUSE_PARTNER_LOCAL": "1", **env})


def test_retries_and_backoff_come_from_code_and_the_environment_overrides_them():
    code = RetryPolicy(retries=5, initial_backoff_s=2)
    env = {
        "EMEUSE_PARTNER_RETRIES": "1",
        "EMEUSE_PARTNER_BACKOFF_MAX_S": "4",
        "EMEUSE_PARTNER_LOCAL": "1",
    }
    retry = load_partner_settings(env, "glucoflow", code).retry
    assert retry == RetryPolicy(retries=1, initial_backoff_s=2, max_backoff_s=4)


def test_the_file_emeuse_partner_add_writes_is_read_as_is(tmp_path):
    config = write(
        tmp_path,
        "# Kafka client settings of partner glucoflow, written by `emeuse partner add`.\n"
        "# Keep this file secret: it holds the partner's password.\n"
        "# Java clients: replace the sasl.username/sasl.password lines with\n"
        "#   sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
        'required username="<sasl.username>" password="<sasl.password>";\n'
        "bootstrap.servers=127.0.0.1:9094\n"
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.username=partner-glucoflow\n"
        "sasl.password=Zx9-_aQ\n",
    )
    connection = load_partner_settings({"EMEUSE_PARTNER_CONFIG": config}, "glucoflow").connection
    assert connection.bootstrap == ("127.0.0.1:9094",)
    assert (connection.username, connection.password) == ("partner-glucoflow", "Zx9-_aQ")


SCRAM_FILE = (
    "bootstrap.servers=127.0.0.1:9094\n"
    "security.protocol=SASL_PLAINTEXT\n"
    "sasl.mechanism=SCRAM-SHA-512\n"
    "sasl.username=partner-glucoflow\n"
    "sasl.password=Zx9-_aQ\n"
)


def test_without_credentials_the_sdk_refuses_to_start_rather_than_use_the_open_listener():
    with pytest.raises(SettingsError, match=r"no credentials.*EMEUSE_PARTNER_LOCAL=1"):
        load_partner_settings({"EMEUSE_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}, "glucoflow")


def test_the_local_listener_and_a_settings_file_together_are_ambiguous(tmp_path):
    env = {"EMEUSE_PARTNER_CONFIG": write(tmp_path, SCRAM_FILE), "EMEUSE_PARTNER_LOCAL": "1"}
    with pytest.raises(SettingsError, match="not both"):
        load_partner_settings(env, "glucoflow")


def test_grants_and_experiments_come_from_the_settings_file(tmp_path):
    text = SCRAM_FILE + (
        "#emeuse.publish=emeuse.chronic.v1.ReadingRecorded\n#emeuse.experiments=pilot-a,pilot-b\n"
    )
    settings = load_partner_settings({"EMEUSE_PARTNER_CONFIG": write(tmp_path, text)}, "glucoflow")
    assert settings.publishes == frozenset({"emeuse.chronic.v1.ReadingRecorded"})
    assert settings.experiments == ("pilot-a", "pilot-b")
    assert settings.experiment_id == "pilot-a"  # what the partner publishes by default


def test_an_experiment_setting_outside_the_partners_experiments_is_refused(tmp_path):
    text = SCRAM_FILE + "#emeuse.publish=emeuse.chronic.v1.ReadingRecorded\n#emeuse.experiments=a\n"
    env = {"EMEUSE_PARTNER_CONFIG": write(tmp_path, text), "EMEUSE_EXPERIMENT": "b"}
    with pytest.raises(SettingsError, match="EMEUSE_EXPERIMENT='b' is not one of your experiments"):
        load_partner_settings(env, "glucoflow")
