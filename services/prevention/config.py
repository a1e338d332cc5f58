"""Prevention service settings; the only reader of os.environ for this service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from emeuse.runtime.settings import ServiceSettings, load_settings, positive_int
from services.prevention.handlers import Delays

# A week after enrolment leaves the person time to set preferences before the first reminder.
DEFAULT_REMINDER_DELAY_S = 7 * 24 * 3600
DEFAULT_FOLLOW_UP_DELAY_S = 7 * 24 * 3600


@dataclass(frozen=True)
class PreventionSettings:
    service: ServiceSettings
    delays: Delays


def _seconds(env: Mapping[str, str], name: str, default: int) -> timedelta:
    raw = env.get(name, "").strip() or str(default)
    return timedelta(seconds=positive_int(name, raw))


def load(env: Mapping[str, str] = os.environ) -> PreventionSettings:
    service = load_settings("prevention", env)
    delays = Delays(
        reminder=_seconds(
            env, "EMEUSE_PREVENTION_REMINDER_DELAY_SECONDS", DEFAULT_REMINDER_DELAY_S
        ),
        follow_up=_seconds(
            env, "EMEUSE_PREVENTION_FOLLOW_UP_DELAY_SECONDS", DEFAULT_FOLLOW_UP_DELAY_S
        ),
    )
    return PreventionSettings(service, delays)
