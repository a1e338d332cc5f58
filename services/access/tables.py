"""Teleconsultation requests per patient, keyed by pseudonym (co-partitioned with alerts)."""

from __future__ import annotations

import faust
from faust.types import TableT

from emeuse.runtime.app import json_table


def declare_tables(app: faust.App) -> TableT:
    return json_table(
        app, "patient_to_requests", "{'requests': [TeleconsultationRequested as proto3 JSON]}"
    )
