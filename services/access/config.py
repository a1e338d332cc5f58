"""Access service settings; the only reader of os.environ for this service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from emeuse.runtime.envelope import TERRITORY_CODES
from emeuse.runtime.settings import (
    ServiceSettings,
    Setting,
    SettingsError,
    load_settings,
    parse_bootstrap,
    positive_int,
)
from services.access.domain.agenda import IMMEDIATE, ROUTINE, SAME_DAY, WITHIN_7_DAYS

URGENCY_NAMES = {
    "immediate": IMMEDIATE,
    "same_day": SAME_DAY,
    "within_7_days": WITHIN_7_DAYS,
    "routine": ROUTINE,
}
# How long a request may wait for a booking before the care coordinator is told.
DEFAULT_BOOKING_DELAYS = "immediate=900,same_day=7200,within_7_days=86400,routine=259200"
CHRONIC_GRPC = Setting(
    "EMEUSE_ACCESS_CHRONIC_GRPC", "127.0.0.1:50052", "where `access` reaches `chronic`"
)
BOOKING_DELAYS = Setting(
    "EMEUSE_ACCESS_BOOKING_DELAYS",
    DEFAULT_BOOKING_DELAYS,
    "seconds a request may wait for a booking, per urgency, before it is flagged",
)
COORDINATORS = Setting(
    "EMEUSE_ACCESS_COORDINATORS",
    "`coordination-<code>` each",
    "care coordinator told of flagged requests, per territory: `55=coord-55,52=...`",
)
# This service's own variables, besides every service's (docs/settings.md).
SETTINGS = (CHRONIC_GRPC, BOOKING_DELAYS, COORDINATORS)


@dataclass(frozen=True)
class AccessSettings:
    service: ServiceSettings
    chronic_grpc: str
    booking_delays: dict[int, timedelta]
    coordinators: dict[str, str]


def parse_booking_delays(name: str, raw: str) -> dict[int, timedelta]:
    """`immediate=900,same_day=7200,...`: seconds per urgency, every urgency named."""
    delays: dict[int, timedelta] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        urgency, _, seconds = part.partition("=")
        if urgency not in URGENCY_NAMES:
            known = ", ".join(URGENCY_NAMES)
            raise SettingsError(f"{name}: unknown urgency {urgency!r} (known: {known})")
        delays[URGENCY_NAMES[urgency]] = timedelta(seconds=positive_int(name, seconds))
    missing = [u for u, n in URGENCY_NAMES.items() if n not in delays]
    if missing:
        raise SettingsError(f"{name}: no delay for {', '.join(missing)}")
    return delays


def parse_coordinators(name: str, raw: str) -> dict[str, str]:
    """`55=coord-55,52=...`: the care coordinator per territory; default coordination-<code>."""
    coordinators = {code: f"coordination-{code}" for code in TERRITORY_CODES}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        code, _, coordinator = part.partition("=")
        if code not in TERRITORY_CODES or not coordinator:
            raise SettingsError(f"{name}: expected <52|54|55>=<coordinator id>, got {part!r}")
        coordinators[code] = coordinator
    return coordinators


def load(env: Mapping[str, str] = os.environ) -> AccessSettings:
    service = load_settings("access", env)
    name, target = CHRONIC_GRPC.read(env)
    try:
        parse_bootstrap(name, target)
    except SettingsError:
        raise SettingsError(
            f"{name}={target!r}: expected host:port of the chronic service"
        ) from None
    delays = parse_booking_delays(*BOOKING_DELAYS.read(env))
    # Unset: each territory's default coordinator (parse_coordinators), so no default here.
    coordinators = parse_coordinators(*COORDINATORS.read(env, default=""))
    return AccessSettings(service, target, delays, coordinators)
