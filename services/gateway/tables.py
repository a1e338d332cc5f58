"""Consents per patient (co-partitioned with the patients' events)."""

from __future__ import annotations

import faust
from faust.types import TableT

from emeuse.runtime.app import json_table


def declare_tables(app: faust.App) -> TableT:
    return json_table(
        app, "patient_to_consents", "Consents with their history (domain.consent.ConsentBook)."
    )
