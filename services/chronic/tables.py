"""Per-patient state, keyed by patient pseudonym (co-partitioned with the input topics)."""

from __future__ import annotations

import faust
from faust.types import TableT

from emeuse.runtime.app import json_table


def declare_tables(app: faust.App) -> tuple[TableT, TableT]:
    patient_to_care_plan = json_table(
        app,
        "patient_to_care_plan",
        "Plan in force: version, bands by LOINC code, the plan (care_plan.StoredPlan).",
    )
    patient_to_state = json_table(
        app, "patient_to_state", "Latest values, alerts, readings seen (domain.monitoring)."
    )
    return patient_to_care_plan, patient_to_state
