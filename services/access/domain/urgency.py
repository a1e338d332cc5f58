"""How soon a consultation is needed, from what asked for it."""

from __future__ import annotations

from enum import Enum


class Urgency(Enum):
    IMMEDIATE = "immediate"
    SAME_DAY = "same_day"
    WITHIN_7_DAYS = "within_7_days"
    ROUTINE = "routine"


def urgency_for_alert(severity: str) -> Urgency | None:
    """A critical chronic alert needs a consultation now; a warning is for the care team."""
    if severity == "critical":
        return Urgency.IMMEDIATE
    return None
