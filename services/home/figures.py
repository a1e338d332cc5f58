"""What the home gauges count in one stored home, and in a whole partition.

A home counts its devices with an open offline incident, by the incident's territory. The
gauge is these figures summed over the partitions an instance holds (emeuse.kernel.sums).
They are counted on the stored JSON: a partition opened here counts every home it holds,
and parsing each whole home for a few incidents would cost far more than the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emeuse.kernel.declare import Scan
from emeuse.kernel.sums import Figures, total
from services.home.domain.detection import Incident
from services.home.domain.home import OPEN, RESOLVED

OFFLINE = Incident.DEVICE_OFFLINE.value


def offline(territory: str) -> str:
    return f"offline:{territory}"


def of_home(stored: Mapping[str, Any] | None) -> Figures:
    """Open offline incidents of a stored home (domain.home.IncidentState.is_open)."""
    figures: Figures = {}
    for incident in ((stored or {}).get("incidents") or {}).values():
        if incident["kind"] == OFFLINE and incident.get("status", OPEN) != RESOLVED:
            name = offline(incident["territory"])
            figures[name] = figures.get(name, 0) + 1
    return figures


def of_partition(scan: Scan, homes: str) -> Figures:
    """Every home a partition holds, counted."""
    return total(of_home(stored) for _, stored in scan(homes))
