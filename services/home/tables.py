"""Per-resident state, keyed by resident pseudonym (co-partitioned with the input topics)."""

from __future__ import annotations

import faust
from faust.types import TableT

from emeuse.runtime.app import json_table


def declare_tables(app: faust.App) -> TableT:
    return json_table(
        app,
        "resident_to_home",
        "Configuration, devices, last activity, incidents, visits (domain.home).",
    )
