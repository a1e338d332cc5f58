"""The variables the `emeuse` command and deploy/kafka/kafka.sh read, besides the services'
(emeuse.runtime.settings): declared here so docs/settings.md lists them (`make docs`).
The tools connect with the security settings of the services (emeuse.runtime.security),
as party `cli` (their `EMEUSE_<SERVICE>_...` variables with `<SERVICE>` = `CLI`)."""

import os
from functools import cache

import grpc

from emeuse.runtime.grpc_tls import open_channel
from emeuse.runtime.security import (
    TOOLS,
    GrpcTls,
    KafkaLogin,
    load_grpc_tls,
    load_kafka_login,
)
from emeuse.runtime.settings import Setting, settings_or_exit

TOOL_SETTINGS = (
    Setting(
        "EMEUSE_KAFKA_PARTNER_BOOTSTRAP",
        "127.0.0.1:9094",
        "the partner listener, written into each partner's settings file",
    ),
    Setting(
        "EMEUSE_PARTNER_SECRETS_DIR",
        ".local/secrets/partners",
        "where `emeuse partner add` writes `<id>.properties` (mode 0600)",
    ),
    Setting(
        "EMEUSE_OPERATOR_TOKEN_FILE",
        ".local/secrets/operator.token",
        "the operator's gRPC token, for `emeuse consent` and `emeuse partner replay`",
    ),
    Setting("EMEUSE_TERRITORY", "none", "territory stamped on registry events (`--territory`)"),
    Setting("KAFKA_PORT", "9092", "the broker's platform listener (`kafka.sh`)"),
    Setting("KAFKA_CONTROLLER_PORT", "9093", "the broker's KRaft controller listener (`kafka.sh`)"),
    Setting("KAFKA_PARTNER_PORT", "9094", "the broker's SASL listener for partners (`kafka.sh`)"),
    Setting(
        "KAFKA_SECURE_PORT",
        "unset",
        "when set, the broker also listens there with SASL_SSL for the platform (TLS from "
        "`scripts/certs.sh`, a SCRAM user per service and `emeuse-cli`; `kafka.sh`)",
    ),
    Setting(
        "SECRETS_DIR",
        ".local/secrets",
        "where `scripts/certs.sh` writes `tls/` (CA, certificates, keys) and `kafka/` (SCRAM "
        "passwords), and where `kafka.sh` reads them",
    ),
)


@cache
def tool_grpc_tls() -> GrpcTls:
    """The gRPC TLS of the `emeuse` command and `emeuse simulate` (party `cli`)."""
    return settings_or_exit(lambda: load_grpc_tls(TOOLS, os.environ))


@cache
def tool_kafka_login() -> KafkaLogin:
    """The Kafka login of the `emeuse` command and `emeuse simulate` (user `emeuse-cli`)."""
    return settings_or_exit(lambda: load_kafka_login(TOOLS, os.environ))


def tool_channel(target: str) -> grpc.Channel:
    """A channel of the tools to a service, with TLS when EMEUSE_GRPC_TLS says so."""
    return open_channel(target, tool_grpc_tls())
