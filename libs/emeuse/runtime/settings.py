"""Service settings: read once from the environment, documented defaults, clear errors.

Every variable is declared once as a `Setting` (name, default, meaning) and read through
it; `make docs` writes docs/settings.md from the declarations, and `make lint` fails when a
variable a service reads is not declared. `EMEUSE_<SERVICE>_...` variables are per service,
so the five services can share one environment.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from emeuse.runtime import acls, kafka_clients, security
from emeuse.runtime.security import NO_TLS, PLAINTEXT, GrpcTls, KafkaLogin
from emeuse.runtime.setting import Setting, SettingsError

SettingsT = TypeVar("SettingsT")

# service -> (gRPC port, metrics port); clear of Kafka (9092/9093) and Prometheus (9090).
DEFAULT_PORTS = {
    "prevention": (50051, 9101),
    "chronic": (50052, 9102),
    "access": (50053, 9103),
    "home": (50054, 9104),
    "gateway": (50055, 9105),
    "evaluation": (50056, 9106),
    "coordination": (50057, 9107),
}
LOG_LEVELS = ("debug", "info", "warning", "error")
BOOTSTRAP = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")


def _by_service(index: int) -> str:
    return ", ".join(f"`{ports[index]}` {service}" for service, ports in DEFAULT_PORTS.items())


KAFKA_BOOTSTRAP = Setting(
    "EMEUSE_KAFKA_BOOTSTRAP",
    security.LOCAL_BOOTSTRAP["SASL_SSL"],
    "Kafka bootstrap servers, comma-separated; unset, the local broker's SASL_SSL listener "
    f"(`{security.LOCAL_BOOTSTRAP['PLAINTEXT']}` under `PLAINTEXT`)",
)
REPLICATION_FACTOR = Setting(
    "EMEUSE_REPLICATION_FACTOR",
    "1",
    "replication factor of created topics and changelogs (3 on a cluster)",
)
EXPERIMENT = Setting(
    "EMEUSE_EXPERIMENT", "emeuse-platform", "experiment stamped on events a service originates"
)
LOG_LEVEL = Setting("EMEUSE_LOG_LEVEL", "info", "`debug`, `info`, `warning` or `error`")
DATA_DIR = Setting(
    "EMEUSE_DATA_DIR",
    ".local/data",
    "each partition's RocksDB store, under `<app id>/<instance id>/p<n>`",
)
ADVERTISED_HOST = Setting(
    "EMEUSE_ADVERTISED_HOST", "127.0.0.1", "host other instances use to reach this one's gRPC"
)
GRPC_DEADLINE_SECONDS = Setting(
    "EMEUSE_GRPC_DEADLINE_SECONDS", "2.0", "deadline of every gRPC call a service makes"
)
TOPICS_WAIT_SECONDS = Setting(
    "EMEUSE_TOPICS_WAIT_SECONDS",
    "300",
    "how long in all a starting service waits for its topics (missing, or a broker still "
    "starting), retrying after 0.5 s, then twice as long each time up to 15 s, before it "
    "exits with status 1",
)
GRPC_CALLERS_FILE = Setting(
    "EMEUSE_GRPC_CALLERS_FILE",
    ".local/secrets/grpc-callers",
    "who may call the gRPC APIs: `<caller-id> <sha256 of token> [<role> [member=|territory=]]`"
    " per line (docs/security.md); read again within a second of a change",
)
GRPC_CALL_SECONDS = Setting(
    "EMEUSE_GRPC_CALL_SECONDS",
    "30",
    "server-side deadline of every gRPC call a service answers (but `Replay`): past it the "
    "call is cancelled and answered `DEADLINE_EXCEEDED`; a caller's shorter deadline wins",
)
GRPC_REPLAY_SECONDS = Setting(
    "EMEUSE_GRPC_REPLAY_SECONDS",
    "300",
    "server-side deadline of the gateway's `Replay` (it reads every source partition)",
)
GRPC_MAX_REQUEST_BYTES = Setting(
    "EMEUSE_GRPC_MAX_REQUEST_BYTES",
    "2097152",
    "largest gRPC request a service reads, in bytes (1114112, room for a 1 MiB FHIR "
    "document, to 67108864): a bigger one is refused unread with `RESOURCE_EXHAUSTED`; gRPC "
    "itself drops anything over 4 times this",
)
GRPC_MAX_IN_FLIGHT = Setting(
    "EMEUSE_GRPC_MAX_IN_FLIGHT",
    "128",
    "calls of its own API a service answers at once (1 to 100000): one more is refused at "
    "once with `RESOURCE_EXHAUSTED` (retry after a short wait) instead of queued behind "
    "calls it cannot answer in time; health checks are never refused",
)
GRPC_HOST = Setting(
    "EMEUSE_<SERVICE>_GRPC_HOST", "127.0.0.1", "address the gRPC and metrics servers bind"
)
GRPC_PORT = Setting("EMEUSE_<SERVICE>_GRPC_PORT", _by_service(0), "gRPC port")
METRICS_PORT = Setting(
    "EMEUSE_<SERVICE>_METRICS_PORT", _by_service(1), "Prometheus `/metrics` port"
)
HEALTH_PORT = Setting(
    "EMEUSE_<SERVICE>_HEALTH_PORT",
    "0",
    "a plaintext port serving the gRPC health service alone (`grpc.health.v1`: no API, no "
    "reflection), bound on the gRPC host, for probes that speak no TLS (Kubernetes' gRPC "
    "probes); `0`: none, health is then served on the gRPC port only",
)
APP_ID = Setting(
    "EMEUSE_<SERVICE>_APP_ID",
    "emeuse-<service>",
    "the Kafka consumer group; also names the transactional ids (`<app id>-<partition>`) "
    "and the state changelog (`<app id>-state-changelog`); under `SASL_SSL`, `emeuse-<service>` "
    "or `emeuse-<service>-…` (what its Kafka ACLs grant)",
)
LEAVE_GROUP_ON_STOP = Setting(
    "EMEUSE_<SERVICE>_LEAVE_GROUP_ON_STOP",
    "true",
    "on SIGTERM, leave the consumer group so the partitions move at once; `false` keeps "
    "them for a restart within 10 s (rolling restarts, no rebalance)",
)
INSTANCE_ID = Setting(
    "EMEUSE_<SERVICE>_INSTANCE_ID",
    "<advertised host>-<gRPC port>",
    "the instance's static group membership id: keep it across restarts (a StatefulSet pod "
    "name), unique per running instance",
)
GRPC_TOKEN_FILE = Setting(
    "EMEUSE_<SERVICE>_GRPC_TOKEN_FILE",
    ".local/secrets/<service>.token",
    "the token a service presents when it calls another",
)
# What every service reads, in the order the docs list them.
SETTINGS = (
    KAFKA_BOOTSTRAP,
    REPLICATION_FACTOR,
    EXPERIMENT,
    LOG_LEVEL,
    DATA_DIR,
    ADVERTISED_HOST,
    GRPC_DEADLINE_SECONDS,
    TOPICS_WAIT_SECONDS,
    GRPC_CALLERS_FILE,
    GRPC_CALL_SECONDS,
    GRPC_REPLAY_SECONDS,
    GRPC_MAX_REQUEST_BYTES,
    GRPC_MAX_IN_FLIGHT,
    GRPC_HOST,
    GRPC_PORT,
    METRICS_PORT,
    HEALTH_PORT,
    APP_ID,
    LEAVE_GROUP_ON_STOP,
    INSTANCE_ID,
    GRPC_TOKEN_FILE,
    *security.SETTINGS,
)


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    kafka_bootstrap: tuple[str, ...]
    replication_factor: int
    experiment_id: str
    log_level: str
    data_dir: Path
    advertised_host: str
    grpc_deadline_seconds: float
    grpc_host: str
    grpc_port: int
    metrics_port: int
    app_id: str
    grpc_callers_file: Path
    grpc_token_file: Path
    # Stable per instance (a restart keeps it): the consumer group's static member id.
    instance_id: str = ""
    # On a clean stop, leave the group so the partitions move at once (scale down); false
    # keeps them for a restart within the session timeout (rolling restart, no rebalance).
    leave_group_on_stop: bool = True
    # How long, in all, a starting service waits for its topics before it gives up.
    topics_wait_seconds: float = 300.0
    # The Guard's server-side deadlines and request size (grpc_server.py, limits.py).
    grpc_call_seconds: float = 30.0
    grpc_replay_seconds: float = 300.0
    grpc_max_request_bytes: int = 2 * 1024 * 1024
    grpc_max_in_flight: int = 128
    # The plaintext health-only port for probes (0: none; grpc_server.py).
    health_port: int = 0
    # TLS of its gRPC server and clients; its Kafka login (security.py). Off by default.
    grpc_tls: GrpcTls = NO_TLS
    # How /metrics is served: HTTPS with the gRPC certificate unless off (security.py).
    metrics_tls: GrpcTls = NO_TLS
    kafka_login: KafkaLogin = PLAINTEXT

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"

    def kafka_options(self) -> dict[str, Any]:
        """Security keyword arguments of every Kafka client the service makes."""
        return kafka_clients.client_options(self.kafka_login)

    @property
    def source(self) -> str:
        """ce_source of the events this service originates."""
        return f"emeuse/{self.service}"


def parse_port(name: str, raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SettingsError(f"{name}={raw!r}: not a port number (1-65535)")
    return int(raw)


def parse_bootstrap(name: str, raw: str) -> tuple[str, ...]:
    servers = tuple(part.strip() for part in raw.split(",") if part.strip())
    bad = [server for server in servers if not BOOTSTRAP.match(server)]
    if not servers or bad:
        raise SettingsError(f"{name}={raw!r}: expected host:port[,host:port...]")
    return servers


def _health_port(name: str, raw: str, taken: tuple[int, int]) -> int:
    port = 0 if raw == "0" else parse_port(name, raw)
    if port in taken:
        raise SettingsError(f"{name}={raw!r}: the service's gRPC or metrics port already")
    return port


def positive_int(name: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name}={raw!r}: expected a whole number >= 1")
    return int(raw)


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name}={raw!r}: expected a number of seconds > 0")
    return value


# A request must hold the largest document a method takes (a 1 MiB FHIR Bundle) and the
# rest of its call; gRPC is told 4 times the bound, so a bigger cap would let one call
# take a quarter of a gigabyte.
MIN_REQUEST_BYTES, MAX_REQUEST_BYTES = 1024 * 1024 + 64 * 1024, 64 * 1024 * 1024


def _calls(name: str, raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise SettingsError(f"{name}={raw!r}: expected a number of calls from 1 to 100000")
    return int(raw)


def _request_bytes(name: str, raw: str) -> int:
    if not raw.isdigit() or not MIN_REQUEST_BYTES <= int(raw) <= MAX_REQUEST_BYTES:
        raise SettingsError(
            f"{name}={raw!r}: expected a number of bytes from {MIN_REQUEST_BYTES}"
            f" to {MAX_REQUEST_BYTES}"
        )
    return int(raw)


def load_settings(service: str, env: Mapping[str, str]) -> ServiceSettings:
    """Settings of `service` from `env`; raises SettingsError naming the bad variable."""
    if service not in DEFAULT_PORTS:
        raise SettingsError(f"unknown service {service!r}")
    grpc_default, metrics_default = DEFAULT_PORTS[service]
    level_name, level = LOG_LEVEL.read(env)
    if level.lower() not in LOG_LEVELS:
        raise SettingsError(f"{level_name}={level!r}: expected one of {', '.join(LOG_LEVELS)}")
    experiment_name, experiment = EXPERIMENT.read(env)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._\-]{0,63}", experiment):
        raise SettingsError(f"{experiment_name}={experiment!r}: expected a lowercase id")
    app_name, app_id = APP_ID.read(env, service, f"emeuse-{service}")
    if not re.fullmatch(r"[A-Za-z0-9._\-]+", app_id):
        raise SettingsError(f"{app_name}={app_id!r}: letters, digits, '.', '_' and '-' only")
    advertised_host = ADVERTISED_HOST.read(env)[1]
    grpc_port = parse_port(*GRPC_PORT.read(env, service, str(grpc_default)))
    metrics_port = parse_port(*METRICS_PORT.read(env, service, str(metrics_default)))
    instance_name, instance_id = INSTANCE_ID.read(env, service, f"{advertised_host}-{grpc_port}")
    if not re.fullmatch(r"[A-Za-z0-9._:\-]{1,200}", instance_id):
        raise SettingsError(f"{instance_name}={instance_id!r}: letters, digits, '.', ':', '_', '-'")
    leave_name, leave = LEAVE_GROUP_ON_STOP.read(env, service)
    if leave.lower() not in ("true", "false"):
        raise SettingsError(f"{leave_name}={leave!r}: expected true or false")
    kafka_login = security.load_kafka_login(service, env)
    if kafka_login.secured and not acls.owns_app_id(service, app_id):
        # Its group, changelog and transactional ids would all be refused by the broker.
        raise SettingsError(
            f"{app_name}={app_id!r}: under SASL_SSL the app id must be emeuse-{service} or "
            f"start with emeuse-{service}- (its Kafka ACLs, docs/security.md#kafka-acls)"
        )
    return ServiceSettings(
        service=service,
        kafka_bootstrap=parse_bootstrap(
            *KAFKA_BOOTSTRAP.read(env, default=security.default_bootstrap(env))
        ),
        replication_factor=positive_int(*REPLICATION_FACTOR.read(env)),
        experiment_id=experiment,
        log_level=level.lower(),
        data_dir=Path(DATA_DIR.read(env)[1]),
        advertised_host=advertised_host,
        grpc_deadline_seconds=_positive_float(*GRPC_DEADLINE_SECONDS.read(env)),
        grpc_host=GRPC_HOST.read(env, service)[1],
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        app_id=app_id,
        grpc_callers_file=Path(GRPC_CALLERS_FILE.read(env)[1]),
        grpc_token_file=Path(
            GRPC_TOKEN_FILE.read(env, service, f".local/secrets/{service}.token")[1]
        ),
        instance_id=instance_id,
        leave_group_on_stop=leave.lower() == "true",
        topics_wait_seconds=_positive_float(*TOPICS_WAIT_SECONDS.read(env)),
        grpc_call_seconds=_positive_float(*GRPC_CALL_SECONDS.read(env)),
        grpc_replay_seconds=_positive_float(*GRPC_REPLAY_SECONDS.read(env)),
        grpc_max_request_bytes=_request_bytes(*GRPC_MAX_REQUEST_BYTES.read(env)),
        grpc_max_in_flight=_calls(*GRPC_MAX_IN_FLIGHT.read(env)),
        health_port=_health_port(*HEALTH_PORT.read(env, service), (grpc_port, metrics_port)),
        grpc_tls=security.load_grpc_tls(service, env),
        metrics_tls=security.load_metrics_tls(service, env),
        kafka_login=kafka_login,
    )


def settings_or_exit(load: Callable[[], SettingsT]) -> SettingsT:
    """Settings from `load()`, or one clear line on stderr and exit status 2."""
    try:
        return load()
    except SettingsError as exc:
        print(f"emeuse: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
