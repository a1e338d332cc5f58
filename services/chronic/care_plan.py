"""Recording a care plan: checked, thresholds kept in canonical units, versioned.

Every change arrives as a CarePlanUpdated event and applies to the next reading. The
chronic service numbers the versions (one writer per patient partition), so two changes
racing never share a version.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, MonitoringProgramme
from emeuse.runtime.codec import InvalidEventError
from services.chronic.handlers import CarePlan, care_plan_from_event

StoredPlan = dict[str, Any]


def check_care_plan(plan: CarePlanUpdated) -> None:
    """What remote monitoring needs from a plan; InvalidEventError names what is missing."""
    if plan.programme == MonitoringProgramme.MONITORING_PROGRAMME_UNSPECIFIED:
        raise InvalidEventError("care plan names no monitoring programme")
    if not plan.thresholds:
        raise InvalidEventError("care plan monitors no measure")
    for band in plan.thresholds:
        # A monitoring gap cannot be switched off for a patient under télésurveillance.
        if band.expected_every.ToSeconds() <= 0:
            raise InvalidEventError(
                f"threshold for {band.loinc_code} has no expected_every interval"
            )
    if not plan.care_team:
        raise InvalidEventError("care plan has no care team to alert")
    ranks = [member.escalation_rank for member in plan.care_team]
    if any(rank < 1 for rank in ranks) or len(set(ranks)) != len(ranks):
        raise InvalidEventError("care-team escalation ranks must be distinct and start at 1")
    if any(not member.member_id or not member.role for member in plan.care_team):
        raise InvalidEventError("every care-team member needs an id and a role")
    if plan.acknowledge_within.ToSeconds() <= 0:
        raise InvalidEventError("care plan has no acknowledge_within delay")


def record_care_plan(plan: CarePlanUpdated, *, previous: StoredPlan | None) -> StoredPlan:
    """The table form of the plan in force: its version, its bands and the plan itself."""
    check_care_plan(plan)
    bands: CarePlan = care_plan_from_event(plan)
    version = int((previous or {}).get("version", 0)) + 1
    recorded = CarePlanUpdated()
    recorded.CopyFrom(plan)
    recorded.version = version
    for band in recorded.thresholds:
        canonical = bands[band.loinc_code]
        band.unit = str(canonical["unit"])
        band.low, band.high = float(canonical["low"]), float(canonical["high"])  # type: ignore[arg-type]
        band.critical_low = float(canonical["critical_low"])  # type: ignore[arg-type]
        band.critical_high = float(canonical["critical_high"])  # type: ignore[arg-type]
    plan_json = json_format.MessageToDict(recorded, preserving_proto_field_name=True)
    return {"version": version, "bands": bands, "plan": plan_json}


def bands_of(stored: StoredPlan | None) -> CarePlan:
    return dict((stored or {}).get("bands", {}))


def plan_of(stored: StoredPlan | None) -> CarePlanUpdated | None:
    if not stored:
        return None
    return json_format.ParseDict(stored["plan"], CarePlanUpdated())
