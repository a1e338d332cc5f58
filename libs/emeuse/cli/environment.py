"""The variables the `emeuse` command and deploy/kafka/kafka.sh read, besides the services'
(emeuse.runtime.settings): declared here so docs/settings.md lists them (`make docs`).
The tools connect with the security settings of the services (emeuse.runtime.security),
as party `cli` (their `EMEUSE_<SERVICE>_...` variables with `<SERVICE>` = `CLI`)."""

import os
from functools import cache
from pathlib import Path

import grpc

from emeuse.runtime.grpc_tls import open_channel
from emeuse.runtime.security import (
    TLS_CA_FILE,
    TOOLS,
    GrpcTls,
    KafkaLogin,
    default_bootstrap,
    load_grpc_tls,
    load_kafka_login,
)
from emeuse.runtime.settings import Setting, SettingsError, settings_or_exit

PARTNER_PROTOCOLS = ("SASL_SSL", "SASL_PLAINTEXT")
PARTNER_PROTOCOL = Setting(
    "EMEUSE_KAFKA_PARTNER_PROTOCOL",
    "SASL_SSL",
    "the partner listener's protocol: `SASL_SSL` (TLS with the CA's certificate, SCRAM) or "
    "`SASL_PLAINTEXT` (loopback tests); `kafka.sh` serves it, `emeuse partner add` writes "
    "it, with the CA's path (`ssl.ca.location`), into each partner's settings file",
)

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
    PARTNER_PROTOCOL,
    Setting("EMEUSE_TERRITORY", "none", "territory stamped on registry events (`--territory`)"),
    Setting("KAFKA_PORT", "9092", "the broker's platform listener (`kafka.sh`)"),
    Setting("KAFKA_CONTROLLER_PORT", "9093", "the broker's KRaft controller listener (`kafka.sh`)"),
    Setting("KAFKA_PARTNER_PORT", "9094", "the broker's SASL listener for partners (`kafka.sh`)"),
    Setting(
        "KAFKA_SECURE_PORT",
        "9095",
        "the broker's SASL_SSL listener for the platform's services and tools (TLS from "
        "`scripts/certs.sh`, a SCRAM user per service, `emeuse-cli` and `emeuse-auditor`; "
        "`kafka.sh`); `off` "
        "opens none (the brokers of `make chaos` and `make bench`)",
    ),
    Setting(
        "KAFKA_CLUSTER_PORT",
        "9192",
        "the first port of the local three-node cluster (`deploy/kafka/cluster.sh`): node N "
        "listens on it + 10(N-1) (admin), +1 (controller), +2 (partners), +3 (SASL_SSL)",
    ),
    Setting(
        "SECRETS_DIR",
        ".local/secrets",
        "where `scripts/certs.sh` writes `tls/` (CA, certificates, keys) and `kafka/` (SCRAM "
        "passwords), and where `kafka.sh` reads them",
    ),
)


def tool_bootstrap() -> str:
    """The platform's Kafka listener for the tools: EMEUSE_KAFKA_BOOTSTRAP, else the local
    broker's listener for their protocol (SASL_SSL 9095 unless PLAINTEXT is chosen)."""
    return os.environ.get("EMEUSE_KAFKA_BOOTSTRAP", "").strip() or default_bootstrap(os.environ)


def partner_listener_security() -> tuple[str, Path | None]:
    """The partner listener's protocol and, under SASL_SSL, the CA file (absolute: the
    settings file is read from wherever the partner runs)."""
    protocol = PARTNER_PROTOCOL.read(os.environ)[1].upper()
    if protocol not in PARTNER_PROTOCOLS:
        raise SettingsError(
            f"{PARTNER_PROTOCOL.name}={protocol!r}: expected one of {', '.join(PARTNER_PROTOCOLS)}"
        )
    if protocol == "SASL_PLAINTEXT":
        return protocol, None
    ca_name, ca = TLS_CA_FILE.read(os.environ)
    path = Path(ca).resolve()
    if not path.is_file():
        raise SettingsError(f"{ca_name}={ca!r}: no such file (make them with scripts/certs.sh)")
    return protocol, path


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
