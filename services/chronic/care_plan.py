"""Recording a care plan: checked, thresholds kept in canonical units, versioned.

Every change arrives as a CarePlanUpdated event and applies to the next reading. The
chronic service numbers the versions (one writer per patient partition), so two changes
racing never share a version.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from google.protobuf import json_format

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, CareRole, MonitoringProgramme
from emeuse.runtime.codec import InvalidEventError
from services.chronic.domain.measures import ReadingError, to_canonical
from services.chronic.domain.plan import DEFAULT_REVIEW_WITHIN_S, Band, Member, PlanInForce

StoredPlan = dict[str, Any]


def check_care_plan(plan: CarePlanUpdated) -> None:
    """What remote monitoring needs from a plan; InvalidEventError names what is missing."""
    if plan.programme == MonitoringProgramme.MONITORING_PROGRAMME_UNSPECIFIED:
        raise InvalidEventError("care plan names no monitoring programme")
    if not plan.thresholds:
        raise InvalidEventError("care plan monitors no measure")
    for band in plan.thresholds:
        check_expected_every(band.loinc_code, band.expected_every.ToTimedelta())
    if not plan.care_team:
        raise InvalidEventError("care plan has no care team to alert")
    ranks = [member.escalation_rank for member in plan.care_team]
    if any(rank < 1 for rank in ranks) or len(set(ranks)) != len(ranks):
        raise InvalidEventError("care-team escalation ranks must be distinct and start at 1")
    if any(not member.member_id or not member.role for member in plan.care_team):
        raise InvalidEventError("every care-team member needs an id and a role")
    if all(member.role == CareRole.CARE_ROLE_LAB for member in plan.care_team):
        raise InvalidEventError("care plan has no care-team member to alert besides the lab")
    if plan.acknowledge_within.ToSeconds() <= 0:
        raise InvalidEventError("care plan has no acknowledge_within delay")
    if plan.review_within.ToSeconds() < 0:
        raise InvalidEventError("care plan review_within cannot be negative")
    bands_of_plan(plan)


# The shortest interval between readings a plan may expect: the gap timers' resolution.
MIN_EXPECTED_EVERY = timedelta(seconds=1)


def check_expected_every(loinc: str, every: timedelta) -> None:
    """A monitoring gap cannot be switched off for a patient under télésurveillance, nor
    watched more finely than the timers go."""
    if every == timedelta(0):
        raise InvalidEventError(f"threshold for {loinc} has no expected_every interval")
    if every < MIN_EXPECTED_EVERY:
        raise InvalidEventError(
            f"threshold for {loinc}: expected_every {every.total_seconds():g} s is under "
            f"the minimum of {MIN_EXPECTED_EVERY.total_seconds():g} s"
        )


def bands_of_plan(plan: CarePlanUpdated) -> dict[str, Band]:
    """Each measure's band in its canonical unit; a band that cannot alert is refused."""
    bands: dict[str, Band] = {}
    for band in plan.thresholds:
        if not band.loinc_code or not band.unit:
            raise InvalidEventError("every care-plan threshold needs a LOINC code and a unit")
        if band.loinc_code in bands:
            raise InvalidEventError(f"care plan lists {band.loinc_code} twice")
        target_low, target_high = band.target_low, band.target_high
        if target_low == target_high == 0:
            target_low, target_high = band.low, band.high
        if not (
            band.critical_low <= band.low <= target_low <= target_high <= band.high
            and band.high <= band.critical_high
        ):
            raise InvalidEventError(
                f"threshold for {band.loinc_code} must satisfy critical_low <= low <= "
                "target_low <= target_high <= high <= critical_high"
            )
        try:
            measure, factor = to_canonical(band.loinc_code, band.unit)
        except ReadingError as exc:
            raise InvalidEventError(f"care plan: {exc}") from None
        bands[band.loinc_code] = Band(
            unit=measure.unit,
            low=band.low * factor,
            high=band.high * factor,
            critical_low=band.critical_low * factor,
            critical_high=band.critical_high * factor,
            target_low=target_low * factor,
            target_high=target_high * factor,
            expected_every_s=band.expected_every.ToTimedelta().total_seconds(),
        )
    return bands


def record_care_plan(
    plan: CarePlanUpdated,
    *,
    previous: StoredPlan | None,
    territory: str,
    recorded_at: datetime,
    experiment: str = "",
) -> StoredPlan:
    """The table form of the plan in force: the plan as the rules read it, and as sent."""
    check_care_plan(plan)
    bands = bands_of_plan(plan)
    before = plan_in_force(previous)
    for loinc, band in bands.items():
        kept = before.bands.get(loinc) if before else None
        same_interval = kept is not None and kept.expected_every_s == band.expected_every_s
        band.monitored_since = (
            (kept.monitored_since or before.recorded_at)
            if same_interval and before and kept
            else recorded_at
        )
    version = int((previous or {}).get("version", 0)) + 1
    recorded = CarePlanUpdated()
    recorded.CopyFrom(plan)
    recorded.version = version
    for threshold in recorded.thresholds:
        band = bands[threshold.loinc_code]
        threshold.unit = band.unit
        threshold.low, threshold.high = band.low, band.high
        threshold.critical_low, threshold.critical_high = band.critical_low, band.critical_high
        threshold.target_low, threshold.target_high = band.target_low, band.target_high
    review_within = plan.review_within.ToSeconds()
    in_force = PlanInForce(
        care_plan_id=plan.care_plan_id,
        version=version,
        programme=plan.programme,
        bands=bands,
        care_team=[
            Member(member_id=m.member_id, role=m.role, rank=m.escalation_rank)
            for m in plan.care_team
        ],
        acknowledge_within_s=plan.acknowledge_within.ToSeconds(),
        recorded_at=recorded_at,
        territory=territory,
        review_within_s=review_within if review_within > 0 else DEFAULT_REVIEW_WITHIN_S,
        experiment=experiment,
    )
    return {
        "version": version,
        "in_force": msgspec.to_builtins(in_force),
        "plan": json_format.MessageToDict(recorded, preserving_proto_field_name=True),
    }


# Event ids of the last plans applied, kept with the plan: a replayed record is recognised.
APPLIED_KEPT = 20


def is_redelivery(plan: CarePlanUpdated, previous: StoredPlan | None, event_id: str = "") -> bool:
    """The plan in force sent again (same care_plan_id), or a plan event already applied
    (read again after a rebalance or a crash, perhaps after a later plan): not a change, no
    new version, and never an older plan back in force."""
    if event_id and event_id in (previous or {}).get("applied", []):
        return True
    before = plan_in_force(previous)
    return (
        before is not None and bool(plan.care_plan_id) and before.care_plan_id == plan.care_plan_id
    )


def applied_events(previous: StoredPlan | None, event_id: str) -> list[str]:
    """The ids of the plan events applied, this one last (the most recent APPLIED_KEPT)."""
    return [*(previous or {}).get("applied", []), event_id][-APPLIED_KEPT:]


# Plans in force parsed once per stored plan: a stored plan is replaced, never edited, and
# every reading of the patient needs it. The entry holds the plan, so its id stays its own.
_PARSED: dict[int, tuple[StoredPlan, PlanInForce]] = {}
PARSED_KEPT = 100_000


def plan_in_force(stored: StoredPlan | None) -> PlanInForce | None:
    if not stored or "in_force" not in stored:
        return None
    hit = _PARSED.get(id(stored))
    if hit is not None and hit[0] is stored:
        return hit[1]
    plan = msgspec.convert(stored["in_force"], PlanInForce)
    if len(_PARSED) >= PARSED_KEPT:
        _PARSED.pop(next(iter(_PARSED)))
    _PARSED[id(stored)] = (stored, plan)
    return plan


def plan_of(stored: StoredPlan | None) -> CarePlanUpdated | None:
    if not stored:
        return None
    return json_format.ParseDict(stored["plan"], CarePlanUpdated())
