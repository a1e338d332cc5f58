#!/usr/bin/env python3
"""What the care teams every instance of access, home and prevention follows cost in memory:
100,000 patients' plans (teams of three among 3,000 professionals) read as the follower
reads them, measured with tracemalloc (docs/security.md#per-patient quotes it)."""

from __future__ import annotations

import gc
import random
import tracemalloc
from datetime import UTC, datetime

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, CareRole, CareTeamMember
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.envelope import new_envelope, to_headers
from emeuse.runtime.pseudonym import random_pseudonym

PATIENTS, PROFESSIONALS, TEAM = 100_000, 3_000, 3


def plan(members: list[str]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    patient = random_pseudonym()
    message = CarePlanUpdated(
        patient_pseudonym=patient,
        care_plan_id=f"cp-{patient[4:16]}",
        care_team=[
            CareTeamMember(member_id=m, role=CareRole.CARE_ROLE_NURSE, escalation_rank=i + 1)
            for i, m in enumerate(members)
        ],
    )
    envelope = new_envelope(
        event_type="emeuse.chronic.v1.CarePlanUpdated",
        source="emeuse/chronic",
        subject_pseudonym=patient,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-memory",
        schema_version="1",
        occurred_at=datetime.now(UTC),
    )
    return patient.encode(), message.SerializeToString(), to_headers(envelope)


def main() -> None:
    staff = [f"ide-{i:05d}" for i in range(PROFESSIONALS)]
    records = [plan(random.sample(staff, TEAM)) for _ in range(PATIENTS)]
    gc.collect()
    tracemalloc.start()
    teams = CareTeams()
    teams.reloading()
    for record in records:
        teams.apply(*record)
    teams.caught_up()
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    print(
        f"{len(teams.teams):,} patients: {size / 1e6:.1f} MB, {size / len(teams.teams):.0f} B "
        f"per patient; 1.1 million: {size / len(teams.teams) * 1.1e6 / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
