from pathlib import Path

import pytest

from emeuse.registry import SERVICES
from emeuse.runtime.security import LOOPBACK_PLAINTEXT
from emeuse.runtime.settings import SettingsError
from emeuse.runtime.settings import load_settings as load_from


def load_settings(service, env):
    """Settings on the loopback opt-out (the TLS defaults need certificate files:
    test_security.py)."""
    return load_from(service, {**LOOPBACK_PLAINTEXT, **env})


def test_defaults_give_each_service_its_own_ports():
    ports = {s: load_settings(s, {}) for s in SERVICES}
    assert {s.grpc_port for s in ports.values()} == set(range(50051, 50051 + len(SERVICES)))
    assert {s.metrics_port for s in ports.values()} == set(range(9101, 9101 + len(SERVICES)))
    chronic = ports["chronic"]
    assert chronic.kafka_bootstrap == ("127.0.0.1:9092",)
    assert chronic.app_id == "emeuse-chronic"
    assert chronic.data_dir == Path(".local/data")
    assert chronic.source == "emeuse/chronic"


def test_per_service_variables_apply_to_that_service_only():
    env = {"EMEUSE_CHRONIC_GRPC_PORT": "6000", "EMEUSE_KAFKA_BOOTSTRAP": "k1:9092, k2:9092"}
    assert load_settings("chronic", env).grpc_port == 6000
    assert load_settings("access", env).grpc_port == 50053
    assert load_settings("access", env).kafka_bootstrap == ("k1:9092", "k2:9092")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EMEUSE_CHRONIC_GRPC_PORT": "fifty"}, "EMEUSE_CHRONIC_GRPC_PORT='fifty': not a port"),
        ({"EMEUSE_CHRONIC_METRICS_PORT": "70000"}, "EMEUSE_CHRONIC_METRICS_PORT"),
        (
            {"EMEUSE_KAFKA_BOOTSTRAP": "localhost"},
            "EMEUSE_KAFKA_BOOTSTRAP='localhost': expected host:port",
        ),
        ({"EMEUSE_LOG_LEVEL": "loud"}, "EMEUSE_LOG_LEVEL"),
        ({"EMEUSE_REPLICATION_FACTOR": "0"}, "EMEUSE_REPLICATION_FACTOR"),
        ({"EMEUSE_GRPC_DEADLINE_SECONDS": "-1"}, "EMEUSE_GRPC_DEADLINE_SECONDS"),
        ({"EMEUSE_EXPERIMENT": "Has Spaces"}, "EMEUSE_EXPERIMENT"),
        ({"EMEUSE_GRPC_CALL_SECONDS": "0"}, "EMEUSE_GRPC_CALL_SECONDS='0'"),
        ({"EMEUSE_GRPC_REPLAY_SECONDS": "soon"}, "EMEUSE_GRPC_REPLAY_SECONDS"),
        (
            {"EMEUSE_GRPC_MAX_REQUEST_BYTES": "1000"},
            "EMEUSE_GRPC_MAX_REQUEST_BYTES='1000': expected a number of bytes from 1114112",
        ),
    ],
)
def test_a_bad_value_names_its_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings("chronic", env)


@pytest.mark.parametrize("value", ["nan", "inf", "0"])
def test_a_deadline_must_be_a_finite_positive_number(value):
    with pytest.raises(SettingsError, match="EMEUSE_GRPC_DEADLINE_SECONDS"):
        load_settings("chronic", {"EMEUSE_GRPC_DEADLINE_SECONDS": value})


def test_grpc_secrets_default_under_local_and_can_be_moved():
    chronic = load_settings("chronic", {})
    assert chronic.grpc_callers_file == Path(".local/secrets/grpc-callers")
    assert chronic.grpc_token_file == Path(".local/secrets/chronic.token")
    moved = load_settings("chronic", {"EMEUSE_CHRONIC_GRPC_TOKEN_FILE": "/run/secrets/chronic"})
    assert moved.grpc_token_file == Path("/run/secrets/chronic")


def test_the_guards_deadlines_and_request_size_are_settings():
    default = load_settings("gateway", {})
    assert (default.grpc_call_seconds, default.grpc_replay_seconds) == (30.0, 300.0)
    assert default.grpc_max_request_bytes == 2 * 1024 * 1024
    env = {
        "EMEUSE_GRPC_CALL_SECONDS": "5",
        "EMEUSE_GRPC_REPLAY_SECONDS": "60",
        "EMEUSE_GRPC_MAX_REQUEST_BYTES": "4194304",
    }
    chosen = load_settings("gateway", env)
    assert (chosen.grpc_call_seconds, chosen.grpc_replay_seconds) == (5.0, 60.0)
    assert chosen.grpc_max_request_bytes == 4194304
