"""Per-person state, keyed by person pseudonym (co-partitioned with the input topic)."""

from __future__ import annotations

import faust
from faust.types import TableT

from emeuse.runtime.app import json_table


def declare_tables(app: faust.App) -> TableT:
    return json_table(
        app, "person_to_schedule", "Enrolment and reminders scheduled (domain.schedule)."
    )
