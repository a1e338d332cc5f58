"""Per-resident state, keyed by resident pseudonym (co-partitioned with the input topic)."""

from __future__ import annotations

import faust
from faust.types import TableT

from emeuse.runtime.app import json_table


def declare_tables(app: faust.App) -> TableT:
    return json_table(
        app, "resident_to_home", "Last activity, events counted, incidents (domain.home)."
    )
