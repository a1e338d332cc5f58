"""deploy/cluster.toml: the settings of the cluster's overlays that are the operator's to
choose, not the registries' (`emeuse deploy render` reads it beside deploy/partners.toml).

    [production.external_names]
    chronic = ["chronic.grpc.example.org"]

Each service named is reachable from outside the cluster by those names, in the production
overlay only: its certificate carries them and a LoadBalancer Service passes TLS through to
its pods (workloads.external_service). No file, or no names: nothing of the platform's gRPC
is reachable from outside.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emeuse.registry import SERVICES

# RFC 1123 names of two labels or more (a name dialled from outside is fully qualified),
# lower case as certificates and DNS compare them; a leading `*.` for a wildcard.
_NAME = re.compile(
    r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
)
_MAX_NAME = 253


class ClusterFileError(ValueError):
    """deploy/cluster.toml says something the render cannot follow."""


@dataclass(frozen=True)
class ClusterSettings:
    """service -> the names it is dialled by from outside the cluster (production)."""

    external_names: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _table(value: Any, where: str, allowed: set[str], kind: str) -> dict[str, Any]:
    """A TOML table holding only the `allowed` keys."""
    if not isinstance(value, dict):
        raise ClusterFileError(f"{where} must be a table")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ClusterFileError(
            f"{where}: unknown {kind} {', '.join(unknown)} (known: {', '.join(sorted(allowed))})"
        )
    return value


def _names(service: str, value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ClusterFileError(f'{where}: {service} must be a list of names, ["a.example.org"]')
    for name in value:
        if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
            raise ClusterFileError(
                f"{where}: {service}: {name!r} is not a fully qualified DNS name "
                "(lower case, two labels or more)"
            )
    return tuple(value)


def read_cluster(path: Path) -> ClusterSettings:
    """The settings; no file is no setting. Errors name the file and the setting."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ClusterSettings()
    except tomllib.TOMLDecodeError as exc:
        raise ClusterFileError(f"{path}: {exc}") from None
    _table(data, str(path), {"production"}, "table")
    production = _table(
        data.get("production", {}), f"{path}: [production]", {"external_names"}, "setting"
    )
    where = f"{path}: [production.external_names]"
    listed = _table(production.get("external_names", {}), where, set(SERVICES), "service")
    external = {service: _names(service, value, where) for service, value in listed.items()}
    seen: dict[str, str] = {}
    for service, names in external.items():
        for name in names:
            if name in seen:
                raise ClusterFileError(
                    f"{where}: {name} is listed for {seen[name]} and {service}: "
                    "a name reaches one load balancer"
                )
            seen[name] = service
    return ClusterSettings({service: names for service, names in external.items() if names})
