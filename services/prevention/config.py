"""Prevention service settings; the only reader of os.environ for this service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from emeuse.runtime.settings import ServiceSettings, Setting, load_settings, positive_int
from services.prevention.handlers import Delays

# A week after enrolment leaves the person time to set preferences before the first reminder.
DEFAULT_REMINDER_DELAY_S = 7 * 24 * 3600
DEFAULT_FOLLOW_UP_DELAY_S = 7 * 24 * 3600
REMINDER_DELAY = Setting(
    "EMEUSE_PREVENTION_REMINDER_DELAY_SECONDS",
    str(DEFAULT_REMINDER_DELAY_S),
    "first screening or vaccination reminder, after enrolment",
)
FOLLOW_UP_DELAY = Setting(
    "EMEUSE_PREVENTION_FOLLOW_UP_DELAY_SECONDS",
    str(DEFAULT_FOLLOW_UP_DELAY_S),
    "follow-up reminder, after a completed teleconsultation",
)
# This service's own variables, besides every service's (docs/settings.md).
SETTINGS = (REMINDER_DELAY, FOLLOW_UP_DELAY)


@dataclass(frozen=True)
class PreventionSettings:
    service: ServiceSettings
    delays: Delays


def _seconds(env: Mapping[str, str], setting: Setting) -> timedelta:
    return timedelta(seconds=positive_int(*setting.read(env)))


def load(env: Mapping[str, str] = os.environ) -> PreventionSettings:
    service = load_settings("prevention", env)
    delays = Delays(
        reminder=_seconds(env, REMINDER_DELAY),
        follow_up=_seconds(env, FOLLOW_UP_DELAY),
    )
    return PreventionSettings(service, delays)
