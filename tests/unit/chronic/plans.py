"""Care plans a care team would write, as CarePlanUpdated events and as the plan in force.

The care team: the GP (rank 1), the home nurse (rank 2), the care coordinator (rank 3)
and the medical lab (CARE_ROLE_LAB, rank 4). Alerts must be acknowledged within 30
minutes; every measure is expected once a day.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration

from emeuse.chronic.v1.chronic_events_pb2 import (
    CarePlanUpdated,
    CareRole,
    CareTeamMember,
    MeasureThreshold,
    MonitoringProgramme,
)
from services.chronic.care_plan import plan_in_force, record_care_plan
from services.chronic.domain.plan import PlanInForce

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
# The plan was recorded the day before the tests' "now".
PLAN_RECORDED_AT = NOW - timedelta(days=1)
TERRITORY = "55"
ACKNOWLEDGE_WITHIN = timedelta(minutes=30)
EXPECTED_EVERY = timedelta(days=1)

GP, NURSE, COORDINATOR, LAB = "gp-0042", "ide-0107", "coord-0003", "lab-0009"

INR, GLUCOSE, WEIGHT = "34714-6", "2339-0", "29463-7"


def pseudonym(seed: str) -> str:
    """A fixed, valid platform pseudonym for a test patient."""
    digest = hashlib.sha256(seed.encode()).digest()[:20]
    return "psn-" + base64.b32encode(digest).decode().lower()


PATIENT = pseudonym("patient-1")


def care_team(*, nurse_first: bool = False) -> list[CareTeamMember]:
    gp_rank, nurse_rank = (2, 1) if nurse_first else (1, 2)
    return [
        CareTeamMember(member_id=GP, role=CareRole.CARE_ROLE_GP, escalation_rank=gp_rank),
        CareTeamMember(member_id=NURSE, role=CareRole.CARE_ROLE_NURSE, escalation_rank=nurse_rank),
        CareTeamMember(
            member_id=COORDINATOR, role=CareRole.CARE_ROLE_COORDINATOR, escalation_rank=3
        ),
        CareTeamMember(member_id=LAB, role=CareRole.CARE_ROLE_LAB, escalation_rank=4),
    ]


def _plan(
    programme: MonitoringProgramme.ValueType,
    threshold: MeasureThreshold,
    *,
    patient: str,
    nurse_first: bool,
) -> CarePlanUpdated:
    threshold.expected_every.CopyFrom(_duration(EXPECTED_EVERY))
    plan = CarePlanUpdated(
        patient_pseudonym=patient,
        care_plan_id=f"cp-{threshold.loinc_code}",
        programme=programme,
        thresholds=[threshold],
        care_team=care_team(nurse_first=nurse_first),
    )
    plan.acknowledge_within.CopyFrom(_duration(ACKNOWLEDGE_WITHIN))
    return plan


def _duration(delta: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(delta)
    return duration


def anticoagulation_plan(
    *, patient: str = PATIENT, loinc: str = INR, nurse_first: bool = False
) -> CarePlanUpdated:
    """INR target 2.0-3.0; below 1.5 or above 5 is urgent."""
    band = MeasureThreshold(
        loinc_code=loinc,
        unit="{INR}",
        low=2.0,
        high=3.0,
        critical_low=1.5,
        critical_high=5.0,
        target_low=2.0,
        target_high=3.0,
    )
    programme = MonitoringProgramme.MONITORING_PROGRAMME_ANTICOAGULATION
    return _plan(programme, band, patient=patient, nurse_first=nurse_first)


def diabetes_plan(
    *,
    patient: str = PATIENT,
    unit: str = "mg/dL",
    target: tuple[float, float] | None = None,
    weight: bool = False,
) -> CarePlanUpdated:
    """Capillary glucose: < 70 hypo, < 54 severe hypo, > 250 hyper, > 400 urgent; with
    `target`, a narrower target range (three values in a row outside it alert)."""
    factor = 1 / 18.016 if unit == "mmol/L" else 1.0
    band = MeasureThreshold(
        loinc_code=GLUCOSE,
        unit=unit,
        low=70 * factor,
        high=250 * factor,
        critical_low=54 * factor,
        critical_high=400 * factor,
    )
    if target is not None:
        band.target_low, band.target_high = target
    programme = MonitoringProgramme.MONITORING_PROGRAMME_DIABETES
    plan = _plan(programme, band, patient=patient, nurse_first=False)
    if weight:
        plan.thresholds.append(_weight_band())
    return plan


def _weight_band() -> MeasureThreshold:
    band = MeasureThreshold(
        loinc_code=WEIGHT, unit="kg", low=40, high=150, critical_low=30, critical_high=200
    )
    band.expected_every.CopyFrom(_duration(EXPECTED_EVERY))
    return band


def heart_failure_plan(*, patient: str = PATIENT) -> CarePlanUpdated:
    """Daily weight; a gain of more than 2 kg over 3 days alerts."""
    programme = MonitoringProgramme.MONITORING_PROGRAMME_HEART_FAILURE
    return _plan(programme, _weight_band(), patient=patient, nurse_first=False)


def in_force(plan: CarePlanUpdated, *, recorded_at: datetime = PLAN_RECORDED_AT) -> PlanInForce:
    """The plan as the rules read it, after the chronic service recorded it."""
    stored = record_care_plan(plan, previous=None, territory=TERRITORY, recorded_at=recorded_at)
    result = plan_in_force(stored)
    assert result is not None
    return result
