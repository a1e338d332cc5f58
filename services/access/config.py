"""Access service settings; the only reader of os.environ for this service."""

from __future__ import annotations

import os
from dataclasses import dataclass

from emeuse.runtime.settings import ServiceSettings, SettingsError, load_settings, parse_bootstrap


@dataclass(frozen=True)
class AccessSettings:
    service: ServiceSettings
    chronic_grpc: str


def load() -> AccessSettings:
    service = load_settings("access", os.environ)
    name = "EMEUSE_ACCESS_CHRONIC_GRPC"
    target = os.environ.get(name, "").strip() or "127.0.0.1:50052"
    try:
        parse_bootstrap(name, target)
    except SettingsError:
        raise SettingsError(
            f"{name}={target!r}: expected host:port of the chronic service"
        ) from None
    return AccessSettings(service, target)
