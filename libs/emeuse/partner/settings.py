"""A partner's settings: who it is, how it reaches the broker, how it retries.

Read once from the environment (and the properties file operations give the partner).
The properties file is the contract with `emeuse partner add`: Java-style `key=value`
lines with `bootstrap.servers`, `security.protocol`, `sasl.mechanism`, `sasl.username`
and `sasl.password`, and under SASL_SSL `ssl.ca.location` (the CA the broker's
certificate is checked against; without it, the system's CAs). When EMEUSE_PARTNER_CONFIG
names a file, its connection settings win over EMEUSE_KAFKA_BOOTSTRAP: a partner's
credential only works on the listener the file names. Without the file the SDK refuses
to start, unless EMEUSE_PARTNER_LOCAL=1 says it runs on the platform's own unauthenticated
listener (the loopback PLAINTEXT one: local trials, the platform's tests):
a forgotten variable must not quietly connect where no credential is checked.
The file's `#emeuse.publish=` and `#emeuse.experiments=` lines (emeuse.partner_credentials)
are the grants the SDK checks before sending. Its `metrics.tls` lines, which the partner adds
itself, say how /metrics is served (plain HTTP unless they ask for TLS).
"""

from __future__ import annotations

import math
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emeuse.partner_credentials import parse_grants
from emeuse.partners import PartnerIdError, check_partner_id, consumer_group_prefix
from emeuse.runtime.security import GRPC_MODES, NO_TLS, GrpcTls
from emeuse.runtime.settings import LOG_LEVELS, SettingsError, parse_bootstrap, parse_port

PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
OFFSET_RESETS = ("earliest", "latest")
GROUP_SUFFIX = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
EXPERIMENT_ID = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,63}$")
DEFAULT_METRICS_PORT = 9201
# The files of /metrics over HTTPS, in GrpcTls's order: the CA (that signed the partner's
# certificate; under mtls, the scrapers' too), the certificate, its key.
METRICS_TLS_FILES = (
    "metrics.ssl.ca.location",
    "metrics.ssl.certificate.location",
    "metrics.ssl.key.location",
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing handler is tried again before dead-lettering.

    Attempt n (0-based) waits min(initial * multiplier**n, max) seconds before the next.
    """

    retries: int = 3
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        return min(self.initial_backoff_s * self.multiplier**attempt, self.max_backoff_s)


@dataclass(frozen=True)
class KafkaConnection:
    """Where the broker is and how the partner authenticates to it."""

    bootstrap: tuple[str, ...]
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's consumer and producer."""
        options: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap),
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL_"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        if self.security_protocol == "SASL_SSL":
            # Checks the broker's certificate and its name against the bootstrap host.
            cafile = str(self.ca_file) if self.ca_file else None
            options["ssl_context"] = ssl.create_default_context(cafile=cafile)
        return options

    def __repr__(self) -> str:  # never print the password
        return (
            f"KafkaConnection(bootstrap={self.bootstrap!r}, "
            f"security_protocol={self.security_protocol!r}, user={self.username!r})"
        )


@dataclass(frozen=True)
class PartnerSettings:
    partner_id: str
    connection: KafkaConnection
    group_id: str
    offset_reset: str
    experiment_id: str
    retry: RetryPolicy
    metrics_host: str
    metrics_port: int  # 0: no /metrics server
    log_level: str
    max_batch: int
    # From the settings file; None when it does not list them (local listener, older file):
    # then only the gateway checks grants and experiment.
    publishes: frozenset[str] | None = None
    experiments: tuple[str, ...] | None = None
    # How /metrics is served (the settings file's metrics.tls): plain HTTP by default.
    metrics_tls: GrpcTls = NO_TLS

    @property
    def source(self) -> str:
        """ce_source of what the partner publishes and sets aside."""
        return f"partner/{self.partner_id}"


def read_properties(path: Path) -> dict[str, str]:
    """A Java properties file reduced to what operations write: `key=value` (or `key: value`)
    lines, `#` and `!` comments, no line continuations."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"EMEUSE_PARTNER_CONFIG={str(path)!r}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if not match:
            raise SettingsError(f"{path}:{number}: expected key=value")
        values[match.group(1)] = match.group(2).strip()
    return values


def grants_from_properties(path: Path) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The publish grants and experiments the file lists (None: not listed)."""
    try:
        return parse_grants(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"EMEUSE_PARTNER_CONFIG={str(path)!r}: {exc.strerror}") from None


def connection_from_properties(path: Path) -> KafkaConnection:
    props = read_properties(path)
    if "bootstrap.servers" not in props:
        raise SettingsError(f"{path}: no bootstrap.servers")
    protocol = props.get("security.protocol", "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise SettingsError(
            f"{path}: security.protocol={protocol!r}: expected one of {', '.join(PROTOCOLS)}"
        )
    bootstrap = parse_bootstrap(f"{path}: bootstrap.servers", props["bootstrap.servers"])
    if protocol == "PLAINTEXT":
        return KafkaConnection(bootstrap)
    mechanism = props.get("sasl.mechanism", "SCRAM-SHA-512").upper()
    if mechanism not in MECHANISMS:
        raise SettingsError(
            f"{path}: sasl.mechanism={mechanism!r}: expected one of {', '.join(MECHANISMS)}"
        )
    missing = [key for key in ("sasl.username", "sasl.password") if not props.get(key)]
    if missing:
        raise SettingsError(f"{path}: {protocol} needs {' and '.join(missing)}")
    ca_file = Path(props["ssl.ca.location"]) if props.get("ssl.ca.location") else None
    if protocol == "SASL_SSL" and ca_file is not None and not ca_file.is_file():
        raise SettingsError(f"{path}: ssl.ca.location={str(ca_file)!r}: no such file")
    return KafkaConnection(
        bootstrap, protocol, mechanism, props["sasl.username"], props["sasl.password"], ca_file
    )


def metrics_tls_from_properties(path: Path) -> GrpcTls:
    """How /metrics is served, from the file's `metrics.tls` (`off`, the default: plain
    HTTP; `tls`: HTTPS; `mtls`: HTTPS to scrapers with a certificate the CA signed) and,
    unless off, the three METRICS_TLS_FILES, which must exist."""
    props = read_properties(path)
    mode = props.get("metrics.tls", "off").strip().lower()
    if mode not in GRPC_MODES:
        raise SettingsError(
            f"{path}: metrics.tls={mode!r}: expected one of {', '.join(GRPC_MODES)}"
        )
    if mode == "off":
        return NO_TLS
    missing = [key for key in METRICS_TLS_FILES if not props.get(key)]
    if missing:
        raise SettingsError(f"{path}: metrics.tls={mode} needs {' and '.join(missing)}")
    files = [Path(props[key]) for key in METRICS_TLS_FILES]
    for key, file in zip(METRICS_TLS_FILES, files, strict=True):
        if not file.is_file():
            raise SettingsError(f"{path}: {key}={str(file)!r}: no such file")
    ca_file, cert_file, key_file = files
    return GrpcTls(mode, ca_file, cert_file, key_file)


def _get(env: Mapping[str, str], name: str, default: str) -> tuple[str, str]:
    return name, env.get(name, "").strip() or default


def _number(name: str, raw: str, *, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum:
        raise SettingsError(f"{name}={raw!r}: expected a number >= {minimum:g}")
    return value


def _whole(name: str, raw: str, *, minimum: int) -> int:
    if not raw.isdigit() or int(raw) < minimum:
        raise SettingsError(f"{name}={raw!r}: expected a whole number >= {minimum}")
    return int(raw)


def load_partner_settings(
    env: Mapping[str, str],
    default_id: str | None = None,
    default_retry: RetryPolicy | None = None,
) -> PartnerSettings:
    """The partner's settings from `env`; raises SettingsError naming the bad variable.

    EMEUSE_PARTNER_ID wins over the id given in code, so one app can run as a staging id.
    """
    id_name, partner_id = _get(env, "EMEUSE_PARTNER_ID", default_id or "")
    if not partner_id:
        raise SettingsError("no partner id: set EMEUSE_PARTNER_ID or give PartnerApp an id")
    try:
        check_partner_id(partner_id)
    except PartnerIdError as exc:
        raise SettingsError(f"{id_name}: {exc}") from None

    config = env.get("EMEUSE_PARTNER_CONFIG", "").strip()
    local_name, local = _get(env, "EMEUSE_PARTNER_LOCAL", "0")
    if local not in ("0", "1"):
        raise SettingsError(f"{local_name}={local!r}: expected 1 or 0")
    publishes: tuple[str, ...] | None = None
    experiments: tuple[str, ...] | None = None
    metrics_tls = NO_TLS
    if config and local == "1":
        raise SettingsError(
            "EMEUSE_PARTNER_CONFIG and EMEUSE_PARTNER_LOCAL=1 both set: give the settings "
            "file (your credentials) or the local listener, not both"
        )
    if config:
        connection = connection_from_properties(Path(config))
        publishes, experiments = grants_from_properties(Path(config))
        metrics_tls = metrics_tls_from_properties(Path(config))
    elif local == "1":
        connection = KafkaConnection(
            parse_bootstrap(*_get(env, "EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
        )
    else:
        raise SettingsError(
            "no credentials: set EMEUSE_PARTNER_CONFIG to the settings file operations gave "
            "you, or EMEUSE_PARTNER_LOCAL=1 to use the platform's local listener "
            "(EMEUSE_KAFKA_BOOTSTRAP, unauthenticated)"
        )

    group_name, group = _get(env, "EMEUSE_PARTNER_GROUP", "sdk")
    if not GROUP_SUFFIX.fullmatch(group):
        raise SettingsError(f"{group_name}={group!r}: lower-case letters, digits, '.', '_', '-'")
    reset_name, reset = _get(env, "EMEUSE_PARTNER_OFFSET_RESET", "earliest")
    if reset not in OFFSET_RESETS:
        raise SettingsError(f"{reset_name}={reset!r}: expected earliest or latest")
    # The default experiment is the first the file lists: the partner's events belong there.
    experiment_name, experiment = _get(
        env, "EMEUSE_EXPERIMENT", experiments[0] if experiments else partner_id
    )
    if not EXPERIMENT_ID.fullmatch(experiment):
        raise SettingsError(f"{experiment_name}={experiment!r}: expected a lowercase id")
    if experiments and env.get("EMEUSE_EXPERIMENT", "").strip() and experiment not in experiments:
        raise SettingsError(
            f"{experiment_name}={experiment!r} is not one of your experiments "
            f"({', '.join(experiments) or 'none'}); the platform would refuse what you publish"
        )
    level_name, level = _get(env, "EMEUSE_LOG_LEVEL", "info")
    if level.lower() not in LOG_LEVELS:
        raise SettingsError(f"{level_name}={level!r}: expected one of {', '.join(LOG_LEVELS)}")
    port_name, port = _get(env, "EMEUSE_PARTNER_METRICS_PORT", str(DEFAULT_METRICS_PORT))
    base = default_retry or RetryPolicy()
    retry = RetryPolicy(
        retries=_whole(*_get(env, "EMEUSE_PARTNER_RETRIES", str(base.retries)), minimum=0),
        initial_backoff_s=_number(
            *_get(env, "EMEUSE_PARTNER_BACKOFF_S", str(base.initial_backoff_s)), minimum=0
        ),
        max_backoff_s=_number(
            *_get(env, "EMEUSE_PARTNER_BACKOFF_MAX_S", str(base.max_backoff_s)), minimum=0
        ),
        multiplier=_number(
            *_get(env, "EMEUSE_PARTNER_BACKOFF_MULTIPLIER", str(base.multiplier)), minimum=1
        ),
    )
    return PartnerSettings(
        partner_id=partner_id,
        connection=connection,
        group_id=consumer_group_prefix(partner_id) + group,
        offset_reset=reset,
        experiment_id=experiment,
        retry=retry,
        metrics_host=_get(env, "EMEUSE_PARTNER_METRICS_HOST", "127.0.0.1")[1],
        metrics_port=0 if port == "0" else parse_port(port_name, port),
        log_level=level.lower(),
        max_batch=_whole(*_get(env, "EMEUSE_PARTNER_MAX_BATCH", "100"), minimum=1),
        publishes=frozenset(publishes) if publishes is not None else None,
        experiments=experiments,
        metrics_tls=metrics_tls,
    )
