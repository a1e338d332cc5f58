"""Which channel a message goes out on: the person's choice, among those we can send."""

from __future__ import annotations

from collections.abc import Iterable

CHANNELS = ("app", "sms", "email")


def known_channels(channels: Iterable[str]) -> list[str]:
    """The channels we send on, in the person's order, each once."""
    kept: list[str] = []
    for channel in channels:
        name = channel.strip().lower()
        if name in CHANNELS and name not in kept:
            kept.append(name)
    return kept


def choose_channel(
    allowed: Iterable[str], *, refused: Iterable[str] = (), tried: Iterable[str] = ()
) -> str | None:
    """The first channel the person allows that we send on, neither refused nor tried."""
    excluded = set(refused) | set(tried)
    for channel in known_channels(allowed):
        if channel not in excluded:
            return channel
    return None
