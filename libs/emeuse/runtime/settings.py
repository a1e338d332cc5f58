"""Service settings: read once from the environment, documented defaults, clear errors.

Every variable, with its default, is in the README's Settings table. `EMEUSE_<SERVICE>_...`
variables are per service, so four services can share one environment.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

SettingsT = TypeVar("SettingsT")

# service -> (gRPC port, metrics port); clear of Kafka (9092/9093) and Prometheus (9090).
DEFAULT_PORTS = {
    "prevention": (50051, 9101),
    "chronic": (50052, 9102),
    "access": (50053, 9103),
    "home": (50054, 9104),
    "gateway": (50055, 9105),
}
LOG_LEVELS = ("debug", "info", "warning", "error")
BOOTSTRAP = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")


class SettingsError(ValueError):
    """A setting with a value the service cannot run with; the message names the variable."""


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

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"

    @property
    def source(self) -> str:
        """ce_source of the events this service originates."""
        return f"emeuse/{self.service}"


def _get(env: Mapping[str, str], name: str, default: str) -> tuple[str, str]:
    value = env.get(name, "").strip()
    return name, value or default


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


def load_settings(service: str, env: Mapping[str, str]) -> ServiceSettings:
    """Settings of `service` from `env`; raises SettingsError naming the bad variable."""
    if service not in DEFAULT_PORTS:
        raise SettingsError(f"unknown service {service!r}")
    grpc_default, metrics_default = DEFAULT_PORTS[service]
    prefix = f"EMEUSE_{service.upper()}_"
    level_name, level = _get(env, "EMEUSE_LOG_LEVEL", "info")
    if level.lower() not in LOG_LEVELS:
        raise SettingsError(f"{level_name}={level!r}: expected one of {', '.join(LOG_LEVELS)}")
    experiment_name, experiment = _get(env, "EMEUSE_EXPERIMENT", "emeuse-platform")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._\-]{0,63}", experiment):
        raise SettingsError(f"{experiment_name}={experiment!r}: expected a lowercase id")
    app_name, app_id = _get(env, prefix + "APP_ID", f"emeuse-{service}")
    if not re.fullmatch(r"[A-Za-z0-9._\-]+", app_id):
        raise SettingsError(f"{app_name}={app_id!r}: letters, digits, '.', '_' and '-' only")
    advertised_host = _get(env, "EMEUSE_ADVERTISED_HOST", "127.0.0.1")[1]
    grpc_port = parse_port(*_get(env, prefix + "GRPC_PORT", str(grpc_default)))
    instance_name, instance_id = _get(env, prefix + "INSTANCE_ID", f"{advertised_host}-{grpc_port}")
    if not re.fullmatch(r"[A-Za-z0-9._:\-]{1,200}", instance_id):
        raise SettingsError(f"{instance_name}={instance_id!r}: letters, digits, '.', ':', '_', '-'")
    leave_name, leave = _get(env, prefix + "LEAVE_GROUP_ON_STOP", "true")
    if leave.lower() not in ("true", "false"):
        raise SettingsError(f"{leave_name}={leave!r}: expected true or false")
    return ServiceSettings(
        service=service,
        kafka_bootstrap=parse_bootstrap(*_get(env, "EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")),
        replication_factor=positive_int(*_get(env, "EMEUSE_REPLICATION_FACTOR", "1")),
        experiment_id=experiment,
        log_level=level.lower(),
        data_dir=Path(_get(env, "EMEUSE_DATA_DIR", ".local/data")[1]),
        advertised_host=advertised_host,
        grpc_deadline_seconds=_positive_float(*_get(env, "EMEUSE_GRPC_DEADLINE_SECONDS", "2.0")),
        grpc_host=_get(env, prefix + "GRPC_HOST", "127.0.0.1")[1],
        grpc_port=grpc_port,
        metrics_port=parse_port(*_get(env, prefix + "METRICS_PORT", str(metrics_default))),
        app_id=app_id,
        grpc_callers_file=Path(
            _get(env, "EMEUSE_GRPC_CALLERS_FILE", ".local/secrets/grpc-callers")[1]
        ),
        grpc_token_file=Path(
            _get(env, prefix + "GRPC_TOKEN_FILE", f".local/secrets/{service}.token")[1]
        ),
        instance_id=instance_id,
        leave_group_on_stop=leave.lower() == "true",
        topics_wait_seconds=_positive_float(*_get(env, "EMEUSE_TOPICS_WAIT_SECONDS", "300")),
    )


def settings_or_exit(load: Callable[[], SettingsT]) -> SettingsT:
    """Settings from `load()`, or one clear line on stderr and exit status 2."""
    try:
        return load()
    except SettingsError as exc:
        print(f"emeuse: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
