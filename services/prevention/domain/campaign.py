"""A campaign's definition and lifecycle: draft -> approved -> (running) -> paused -> finished.

Running is not stored: an approved campaign runs inside its schedule window, and any
campaign past its window is finished. Only approved and running campaigns send.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.prevention.domain.segments import Person, Segment, matches

DRAFT, APPROVED, RUNNING, PAUSED, FINISHED = "draft", "approved", "running", "paused", "finished"
# Stored transitions; a change applies only on top of the version before it.
TRANSITIONS = {
    DRAFT: {APPROVED, FINISHED},
    APPROVED: {PAUSED, FINISHED},
    PAUSED: {APPROVED, FINISHED},
    FINISHED: set(),
}


class Audience(BaseModel):
    segment: Segment = Field(default_factory=Segment)
    template_id: str
    language: str = ""
    parameters: dict[str, str] = Field(default_factory=dict)


class CampaignDef(BaseModel):
    campaign_id: str
    version: int
    write_id: str
    status: str
    label_code: str = ""
    segment: Segment = Field(default_factory=Segment)
    audiences: list[Audience] = Field(default_factory=list)
    start_at: datetime
    end_at: datetime
    cap_max: int = 0
    cap_per_s: float = 0.0
    quiet_start: int = 0
    quiet_end: int = 0
    created_by: str = ""
    approved_by: str = ""
    experiment_id: str = ""

    def status_at(self, now: datetime) -> str:
        if self.status == FINISHED or now >= self.end_at:
            return FINISHED
        if self.status == APPROVED and now >= self.start_at:
            return RUNNING
        return self.status

    def sends(self, now: datetime) -> bool:
        """Approved (waiting for its window) or running: people are targeted."""
        return self.status_at(now) in (APPROVED, RUNNING)

    def reaches(self, person: Person) -> bool:
        """Whether the person is in the campaign's segment and one of its audiences."""
        return matches(self.segment, person) and any(
            matches(a.segment, person) for a in self.audiences
        )

    def audience_for(self, person: Person, language: str) -> Audience | None:
        """The message a person gets: the first audience they match in their language (the
        same tag, else the same primary subtag: fr-FR takes fr), else the first they match
        with a template in any language, else the first they match at all."""
        if not matches(self.segment, person):
            return None
        theirs = [a for a in self.audiences if matches(a.segment, person)]
        for audience in theirs:
            if audience.language.lower() == language.lower():
                return audience
        primary = _primary(language)
        for audience in theirs:
            if audience.language and _primary(audience.language) == primary:
                return audience
        for audience in theirs:
            if not audience.language:
                return audience
        return theirs[0] if theirs else None


def _primary(language: str) -> str:
    """A language tag's primary subtag: fr-FR -> fr."""
    return language.split("-", 1)[0].lower()


def consistent(campaign: CampaignDef) -> bool:
    """Whether a campaign could be the outcome of its own history: version 1 is a draft,
    anything approved, paused or finished went through at least one change, and a draft
    was never approved."""
    if campaign.version < 1:
        return False
    if campaign.status == DRAFT:
        return not campaign.approved_by
    return campaign.version >= 2


def follows(current: CampaignDef | None, new: CampaignDef) -> bool:
    """Whether `new` applies on top of `current`: the next version, an allowed transition.
    Every instance applies the same log in the same order, so all agree on the winner.

    The log is compacted: in time only each campaign's latest record is left, so the first
    record seen for a campaign is taken at any version, provided it is consistent."""
    if current is None:
        return consistent(new)
    if new.version != current.version + 1:
        return False
    return new.status == current.status or new.status in TRANSITIONS[current.status]
