"""The care plan in force for one patient, as the rules read it (canonical units)."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from services.chronic.domain.measures import equivalent_codes
from services.chronic.domain.thresholds import Threshold

# CareRole numbers of the protobuf enum: who prescribes, who validates lab results.
ROLE_GP, ROLE_SPECIALIST, ROLE_LAB = 1, 2, 6
PRESCRIBERS = (ROLE_GP, ROLE_SPECIALIST)
HEART_FAILURE = 2


class Band(msgspec.Struct, kw_only=True, gc=False):
    """Thresholds of one measure, in its canonical unit."""

    unit: str
    low: float
    high: float
    critical_low: float
    critical_high: float
    target_low: float
    target_high: float
    expected_every_s: float
    # Since when this measure is monitored at this interval: the gap clock's start. A plan
    # change keeps it for a measure whose interval did not change.
    monitored_since: datetime | None = None

    @property
    def threshold(self) -> Threshold:
        return Threshold(self.unit, self.low, self.high, self.critical_low, self.critical_high)

    @property
    def expected_every(self) -> timedelta:
        return timedelta(seconds=self.expected_every_s)


class Member(msgspec.Struct, kw_only=True, gc=False):
    """A care-team member an alert can reach."""

    member_id: str
    role: int
    rank: int


DEFAULT_REVIEW_WITHIN_S = 4 * 3600.0


class PlanInForce(msgspec.Struct, kw_only=True, gc=False):
    care_plan_id: str = ""
    version: int
    programme: int
    bands: dict[str, Band]
    care_team: list[Member]
    acknowledge_within_s: float
    recorded_at: datetime
    territory: str
    review_within_s: float = DEFAULT_REVIEW_WITHIN_S
    # The experiment the patient is enrolled in (the plan's envelope): what the care team
    # does (acknowledgements, resolutions) and what the timers decide (escalations, gaps)
    # is published in it, as the reading that raised an alert was. Empty in plans stored
    # before it was kept: the service's own experiment then.
    experiment: str = ""

    def monitored_code(self, loinc: str) -> str | None:
        """The plan's code for what `loinc` measures (itself, or an equivalent code such as
        the lab INR for a capillary INR); None when the plan does not monitor it."""
        if loinc in self.bands:
            return loinc
        return next((code for code in sorted(equivalent_codes(loinc)) if code in self.bands), None)

    def member(self, member_id: str) -> Member | None:
        return next((m for m in self.care_team if m.member_id == member_id), None)

    def escalation_chain(self, *, prescriber_first: bool) -> list[Member]:
        """Members in escalation order, the lab left out (it validates results, it does not
        act on alerts); a lab result goes to its prescriber first."""
        chain = sorted((m for m in self.care_team if m.role != ROLE_LAB), key=lambda m: m.rank)
        if prescriber_first:
            chain.sort(key=lambda m: m.role not in PRESCRIBERS)
        return chain
