#!/usr/bin/env python3
"""What the care teams every instance of access, home and prevention follows cost in memory
and in time: 100,000 patients' plans (teams of three among 3,000 professionals) read as the
follower reads them (each checked as chronic checks it), measured with tracemalloc, then
timed on a second read without it (docs/security.md#per-patient quotes both)."""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from datetime import UTC, datetime

from emeuse.chronic.v1.chronic_events_pb2 import CareRole, CareTeamMember
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import CARE_PLAN_UPDATED
from emeuse.runtime.care_teams import CareTeams
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.envelope import new_envelope, to_headers
from emeuse.runtime.pseudonym import random_pseudonym
from services.chronic.care_plan import check_care_plan
from tests.unit.chronic.plans import anticoagulation_plan
from tests.unit.runtime.test_care_teams import Record

PATIENTS, PROFESSIONALS, TEAM = 100_000, 3_000, 3


def plan(members: list[str]) -> Record:
    """The record of a plan chronic accepts (an INR band) naming `members`."""
    patient = random_pseudonym()
    message = anticoagulation_plan(patient=patient)
    message.care_plan_id = f"cp-{patient[4:16]}"
    del message.care_team[:]
    message.care_team.extend(
        CareTeamMember(member_id=m, role=CareRole.CARE_ROLE_NURSE, escalation_rank=i + 1)
        for i, m in enumerate(members)
    )
    envelope = new_envelope(
        event_type=CARE_PLAN_UPDATED.type_name,
        source="emeuse/chronic",
        subject_pseudonym=patient,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-memory",
        schema_version=CARE_PLAN_UPDATED.schema_version,
        occurred_at=datetime.now(UTC),
    )
    key = patient.encode()
    partition = expected_partition(key, CARE_PLAN_UPDATED.partitions)
    return Record(key, message.SerializeToString(), to_headers(envelope), partition)


def main() -> None:
    staff = [f"ide-{i:05d}" for i in range(PROFESSIONALS)]
    records = [plan(random.sample(staff, TEAM)) for _ in range(PATIENTS)]
    gc.collect()
    tracemalloc.start()
    teams = CareTeams(accepts=check_care_plan)
    teams.reloading()
    for record in records:
        teams.apply(record)
    teams.caught_up()
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    print(
        f"{len(teams.teams):,} patients: {size / 1e6:.1f} MB, {size / len(teams.teams):.0f} B "
        f"per patient; 1.1 million: {size / len(teams.teams) * 1.1e6 / 1e6:.0f} MB"
    )
    tracemalloc.stop()
    teams.reloading()
    started = time.perf_counter()
    for record in records:
        teams.apply(record)
    per_plan = (time.perf_counter() - started) / len(records)
    print(f"{per_plan * 1e6:.0f} µs per plan read; 1.1 million: {per_plan * 1.1e6:.0f} s")


if __name__ == "__main__":
    main()
