"""How the platform's own connections are protected: gRPC (TLS, optionally mutual) and
Kafka (SASL_SSL with SCRAM-SHA-512). On by default: mutual TLS and SASL_SSL, with the files
`scripts/certs.sh` makes under .local/secrets (what `make up` runs). Plaintext only when a
setting says so: the test brokers' loopback runs (scripts/broker-env.sh, the integration
harness) and an operator's explicit opt-out (docs/security.md).

A "party" is who connects: a service (`chronic`...) or `cli`, the `emeuse` command and
`emeuse simulate`. Each has its own certificate, key and Kafka user; all trust one CA.
Files are checked when the settings are read, so a wrong path stops the process at start
with the variable's name, not at the first call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emeuse.runtime.setting import Setting, SettingsError

TOOLS = "cli"
# The auditors' Kafka user (emeuse-auditor): reads the audit trail and nothing else.
AUDITOR = "auditor"
# The local Prometheus, scraping every service's /metrics with a certificate of its own.
SCRAPER = "prometheus"
GRPC_MODES = ("off", "tls", "mtls")
KAFKA_PROTOCOLS = ("PLAINTEXT", "SASL_SSL")
SCRAM = "SCRAM-SHA-512"
TLS_DIR = ".local/secrets/tls"
KAFKA_SECRETS_DIR = ".local/secrets/kafka"

GRPC_TLS = Setting(
    "EMEUSE_GRPC_TLS",
    "mtls",
    "`mtls` (every gRPC server presents its certificate and requires a client certificate "
    "the CA signed: a call without one is refused before any token is looked at), `tls` "
    "(clients check the server's certificate against the CA, present none) or `off` "
    "(plaintext: loopback tests only)",
)
METRICS_TLS = Setting(
    "EMEUSE_METRICS_TLS",
    "EMEUSE_GRPC_TLS",
    "how a service serves `/metrics`, with its gRPC certificate: `mtls` (HTTPS; the scraper "
    "must present a certificate the CA signed, as the local Prometheus does), `tls` (HTTPS; "
    "any scraper trusting the CA) or `off` (plain HTTP: loopback tests, the cluster's probes)",
)
TLS_CA_FILE = Setting(
    "EMEUSE_TLS_CA_FILE",
    f"{TLS_DIR}/ca.crt",
    "the CA certificate (PEM) that gRPC peers and, unless EMEUSE_KAFKA_CA_FILE says "
    "otherwise, the Kafka broker are checked against (`scripts/certs.sh` makes it)",
)
TLS_CERT_FILE = Setting(
    "EMEUSE_<SERVICE>_TLS_CERT_FILE",
    f"{TLS_DIR}/<service>.crt",
    "the party's certificate (PEM), served by its gRPC and `/metrics` servers and presented "
    "as a client under `mtls`; `<SERVICE>` may also be `CLI` (the `emeuse` command) or "
    "`PROMETHEUS` (the local Prometheus, scraping `/metrics`)",
)
TLS_KEY_FILE = Setting(
    "EMEUSE_<SERVICE>_TLS_KEY_FILE", f"{TLS_DIR}/<service>.key", "the certificate's key (PEM)"
)
KAFKA_SECURITY_PROTOCOL = Setting(
    "EMEUSE_KAFKA_SECURITY_PROTOCOL",
    "SASL_SSL",
    "`SASL_SSL` (TLS checked against the CA, SCRAM-SHA-512 login, on the broker's secure "
    "listener) or `PLAINTEXT` (the local broker's loopback listener: loopback tests only)",
)
KAFKA_CA_FILE = Setting(
    "EMEUSE_KAFKA_CA_FILE",
    "EMEUSE_TLS_CA_FILE",
    "the CA certificate (PEM) the broker's certificate is checked against (a Strimzi "
    "cluster's own CA, say); a CA the file gains is trusted within a second, no restart",
)
KAFKA_USER = Setting(
    "EMEUSE_<SERVICE>_KAFKA_USER", "emeuse-<service>", "the party's SCRAM user under `SASL_SSL`"
)
KAFKA_PASSWORD_FILE = Setting(
    "EMEUSE_<SERVICE>_KAFKA_PASSWORD_FILE",
    f"{KAFKA_SECRETS_DIR}/emeuse-<service>.password",
    "the file holding that user's SCRAM password (its first line)",
)
SETTINGS = (
    GRPC_TLS,
    METRICS_TLS,
    TLS_CA_FILE,
    TLS_CERT_FILE,
    TLS_KEY_FILE,
    KAFKA_SECURITY_PROTOCOL,
    KAFKA_CA_FILE,
    KAFKA_USER,
    KAFKA_PASSWORD_FILE,
)


@dataclass(frozen=True)
class GrpcTls:
    """gRPC transport security of one party; `mode` "off" is plaintext."""

    mode: str = "off"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def on(self) -> bool:
        return self.mode != "off"

    @property
    def mutual(self) -> bool:
        return self.mode == "mtls"


@dataclass(frozen=True)
class KafkaLogin:
    """How one party connects to Kafka; PLAINTEXT carries no user."""

    protocol: str = "PLAINTEXT"
    ca_file: Path | None = None
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def secured(self) -> bool:
        return self.protocol == "SASL_SSL"


PLAINTEXT = KafkaLogin()
NO_TLS = GrpcTls()
# The explicit opt-out, for loopback tests: gRPC, /metrics and Kafka in plaintext
# (docs/security.md).
LOOPBACK_PLAINTEXT = {
    GRPC_TLS.name: "off",
    METRICS_TLS.name: "off",
    KAFKA_SECURITY_PROTOCOL.name: "PLAINTEXT",
}
# The local broker's listeners (deploy/kafka/kafka.sh): the platform's SASL_SSL one, and the
# loopback PLAINTEXT one kept for the broker's own administration and loopback tests.
LOCAL_BOOTSTRAP = {"SASL_SSL": "127.0.0.1:9095", "PLAINTEXT": "127.0.0.1:9092"}


def default_bootstrap(env: Mapping[str, str]) -> str:
    """The local broker's listener for the protocol `env` chooses (EMEUSE_KAFKA_BOOTSTRAP
    unset): a PLAINTEXT opt-out reaches the loopback listener without naming it."""
    protocol = KAFKA_SECURITY_PROTOCOL.read(env)[1].upper()
    return LOCAL_BOOTSTRAP.get(protocol, LOCAL_BOOTSTRAP["SASL_SSL"])


def _file(name: str, raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise SettingsError(f"{name}={raw!r}: no such file (make them with scripts/certs.sh)")
    return path


def load_grpc_tls(party: str, env: Mapping[str, str]) -> GrpcTls:
    return _load_tls(party, env, *GRPC_TLS.read(env))


def load_metrics_tls(party: str, env: Mapping[str, str]) -> GrpcTls:
    """How `party` serves /metrics (a service) or scrapes it (SCRAPER); unset, as its gRPC:
    HTTPS wherever gRPC is TLS, with the same certificate."""
    return _load_tls(party, env, *METRICS_TLS.read(env, default=GRPC_TLS.read(env)[1]))


def _load_tls(party: str, env: Mapping[str, str], mode_name: str, mode: str) -> GrpcTls:
    if mode.lower() not in GRPC_MODES:
        raise SettingsError(f"{mode_name}={mode!r}: expected one of {', '.join(GRPC_MODES)}")
    if mode.lower() == "off":
        return NO_TLS
    return GrpcTls(
        mode=mode.lower(),
        ca_file=_file(*TLS_CA_FILE.read(env)),
        cert_file=_file(*TLS_CERT_FILE.read(env, party, f"{TLS_DIR}/{party}.crt")),
        key_file=_file(*TLS_KEY_FILE.read(env, party, f"{TLS_DIR}/{party}.key")),
    )


def load_kafka_login(party: str, env: Mapping[str, str]) -> KafkaLogin:
    protocol_name, protocol = KAFKA_SECURITY_PROTOCOL.read(env)
    if protocol.upper() not in KAFKA_PROTOCOLS:
        raise SettingsError(
            f"{protocol_name}={protocol!r}: expected one of {', '.join(KAFKA_PROTOCOLS)}"
        )
    if protocol.upper() == "PLAINTEXT":
        return PLAINTEXT
    ca_name, ca = KAFKA_CA_FILE.read(env, default=TLS_CA_FILE.read(env)[1])
    user_name, user = KAFKA_USER.read(env, party, f"emeuse-{party}")
    password_name, password_path = KAFKA_PASSWORD_FILE.read(
        env, party, f"{KAFKA_SECRETS_DIR}/{user}.password"
    )
    lines = _file(password_name, password_path).read_text(encoding="utf-8").splitlines()
    password = lines[0].strip() if lines else ""
    if not password:
        raise SettingsError(f"{password_name}={password_path!r}: the file is empty")
    if not user:
        raise SettingsError(f"{user_name}: a SCRAM user is needed with SASL_SSL")
    return KafkaLogin("SASL_SSL", _file(ca_name, ca), user, password)
