"""What the access gauges count in a territory's agenda, and in a whole partition.

A territory counts its slots not started yet and those of them booked (the slot
utilisation is their ratio), and its requests in line by urgency and those of them past
their booking delay. The gauges are these figures summed over the partitions an instance
holds (emeuse.kernel.sums). Both depend on the time as well as on the agenda, so they are
counted at a moment: when a partition is opened here, and a few seconds after a burst of
changes of a territory's agenda (processing's `agenda-gauges` timer), not changed by
deltas.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from emeuse.kernel.declare import Scan
from emeuse.kernel.sums import Figures, total
from services.access.domain.agenda import URGENCIES, booking_deadline
from services.access.scheduling import Agenda, AgendaTables
from services.access.state import REQUESTS, SLOTS, territory_of


def booked_slots(territory: str) -> str:
    return f"slots_booked:{territory}"


def upcoming_slots(territory: str) -> str:
    return f"slots_upcoming:{territory}"


def waiting(territory: str, urgency: int) -> str:
    return f"waiting:{territory}:{urgency}"


def unmet(territory: str, urgency: int) -> str:
    return f"unmet:{territory}:{urgency}"


def of_agenda(agenda: Agenda, now: datetime, delays: dict[int, timedelta]) -> Figures:
    """A territory's figures as its agenda stands at `now`, zeros included: a recount
    replaces every figure of the territory."""
    t = agenda.territory
    booked, upcoming = agenda.slot_use(now)
    figures = {booked_slots(t): booked, upcoming_slots(t): upcoming}
    for urgency in URGENCIES:
        figures[waiting(t, urgency)] = figures[unmet(t, urgency)] = 0
    for request in agenda.waiting():
        # Only the four urgencies are ever accepted (scheduling.request_consultation).
        figures[waiting(t, request.urgency)] += 1
        if booking_deadline(request, delays) <= now:
            figures[unmet(t, request.urgency)] += 1
    return figures


def of_partition(scan: Scan, now: datetime, delays: dict[int, timedelta]) -> Figures:
    """Every territory's agenda a partition holds, counted at `now` (its slots and requests
    read once, then counted by the agenda's own rules)."""
    slots, requests = dict(scan(SLOTS)), dict(scan(REQUESTS))
    tables = AgendaTables(
        practitioners={}, slots=slots, requests=requests, bookings={}, actions={}, places={}
    )
    territories = sorted({territory_of(key) for key in (*slots, *requests)})
    return total(of_agenda(Agenda(t, tables), now, delays) for t in territories)
