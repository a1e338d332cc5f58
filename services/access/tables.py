"""A territory's agenda, in tables keyed "<territory>|<id>".

Every write comes from the scheduler agent handling a record keyed by the territory, so
faust puts each entry in the changelog partition of its territory: the tables are
co-partitioned with the access topics though their keys carry an id after the territory.
"""

from __future__ import annotations

import faust

from emeuse.runtime.app import json_table
from services.access.scheduling import AgendaTables


def declare_tables(app: faust.App) -> AgendaTables:
    return AgendaTables(
        practitioners=json_table(
            app, "access_practitioners", "Directory (domain.agenda.Practitioner)."
        ),
        slots=json_table(app, "access_slots", "Published slots and their booking (SlotState)."),
        requests=json_table(app, "access_requests", "Requests and their status (RequestState)."),
        bookings=json_table(app, "access_bookings", "Bookings and their lifecycle (BookingState)."),
        actions=json_table(app, "access_actions", "Outcome of each booking action, for callers."),
        places=json_table(app, "access_places", "Directory of places (domain.agenda.Location)."),
    )
