"""Which channel a reminder goes out on: the person's choice, among those we can send."""

from __future__ import annotations

from collections.abc import Iterable

CHANNELS = ("app", "sms", "email")


def choose_channel(allowed: Iterable[str]) -> str | None:
    """The first channel the person allows that the platform sends on, in their order."""
    for channel in allowed:
        if channel.strip().lower() in CHANNELS:
            return channel.strip().lower()
    return None
