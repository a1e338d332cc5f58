"""Per-person state, keyed by person pseudonym (co-partitioned with the person topics)."""

from __future__ import annotations

import faust
from faust.types import TableT

from emeuse.runtime.app import json_table


def declare_tables(app: faust.App) -> TableT:
    return json_table(
        app,
        "person_to_state",
        "Profile, opt-outs, programmes, messages and campaign reach (domain.person).",
    )
