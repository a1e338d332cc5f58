"""A person's prevention state, kept in the `person_to_state` table.

Profile and preferences, opt-outs, attributes learnt from the other axes, programmes,
messages (scheduled and recent), the person's share of each campaign's reach, and the
ids already seen (to apply an input once). Bounded, so a person's state stays small.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from services.prevention.domain.programmes import PROGRAMMES
from services.prevention.domain.segments import Person
from services.prevention.domain.timing import QuietHours

RECENT_IDS_KEPT = 500
OPT_OUTS_KEPT = 20
CLOSED_MESSAGES_KEPT = 100
CAMPAIGN_SENDS_KEPT = 50
# Actions on reminders kept per person: the doses and screenings their reminders are
# answered by (an HPV series needs two; a screening is current for two years).
ACTIONS_KEPT = 20
# Nor longer than the longest screening interval, the longest an action is taken to
# answer: the actions of someone never enrolled would otherwise be kept forever.
ACTIONS_LAST = max(p.every for p in PROGRAMMES if p.every is not None)

SCHEDULED, SENT, DELIVERED, OPENED, FAILED, CANCELLED = (
    "scheduled",
    "sent",
    "delivered",
    "opened",
    "failed",
    "cancelled",
)


class Profile(BaseModel):
    age_from: int
    age_to: int
    territory: str
    channels: list[str]
    quiet_start: int = 0
    quiet_end: int = 0
    language: str = "fr"
    enrolled_at: datetime
    # Id of the enrolment event that set this profile: EnrollPerson asked again with the
    # same data answers it (a repeat after a lost answer).
    enrolled_by: str = ""
    # The experiment the person was enrolled in (the enrolment's envelope): an opt-out and
    # what the timers send are published in it (the call and the timer name none).
    experiment: str = ""

    @property
    def quiet(self) -> QuietHours:
        return QuietHours(self.quiet_start, self.quiet_end)


class Message(BaseModel):
    message_id: str
    campaign_id: str = ""
    programme: str = ""
    step: str = ""
    template_id: str
    parameters: dict[str, str] = Field(default_factory=dict)
    language: str = "fr"
    channel: str = ""
    due_at: datetime
    territory: str = ""
    status: str = SCHEDULED
    attempts: int = 0
    channels_tried: list[str] = Field(default_factory=list)
    sent_on: str = ""
    sent_at: datetime | None = None
    cancel_reason: str = ""

    @property
    def open(self) -> bool:
        return self.status == SCHEDULED


class Reach(BaseModel):
    """The person's share of a campaign's reach (stats), kept after the message is pruned."""

    campaign_id: str
    territory: str
    message_id: str
    sent: bool = False
    delivered: bool = False
    opened: bool = False
    clicked: bool = False
    failed: bool = False
    opted_out: bool = False
    cancelled: bool = False


class ProgrammeState(BaseModel):
    programme: str
    # Times started after an end: a new pregnancy's messages are new messages.
    cycle: int = 1
    started_at: datetime
    due_date: date | None = None
    born_on: date | None = None
    ended_at: datetime | None = None
    end_reason: int = 0

    @property
    def running(self) -> bool:
        return self.ended_at is None


class OptOutDone(BaseModel):
    cancelled: list[str] = Field(default_factory=list)
    moved: list[str] = Field(default_factory=list)


class ActionTaken(BaseModel):
    """A screening done or a dose given (PreventionActionRecorded), kept to answer the
    series' reminders: those planned since too (an enrolment after the action)."""

    action_id: str
    series: str
    acted_at: datetime


class PersonState(BaseModel):
    profile: Profile | None = None
    attributes: list[str] = Field(default_factory=list)
    opted_out_all: bool = False
    opted_out_channels: list[str] = Field(default_factory=list)
    messages: dict[str, Message] = Field(default_factory=dict)
    reach: dict[str, Reach] = Field(default_factory=dict)
    programmes: dict[str, ProgrammeState] = Field(default_factory=dict)
    # When campaign messages were sent, for the frequency cap.
    campaign_sends: list[datetime] = Field(default_factory=list)
    seen: list[str] = Field(default_factory=list)
    # What each recent opt-out did (cancelled, moved message ids), by opt-out id: the
    # answer a retried OptOut call gets again.
    opt_outs: dict[str, OptOutDone] = Field(default_factory=dict)
    actions: list[ActionTaken] = Field(default_factory=list)

    def changed(self) -> PersonState:
        """A copy to change, leaving this one as it was."""
        return type(self).model_validate(self.model_dump())

    @property
    def enrolled(self) -> bool:
        return self.profile is not None

    def has_seen(self, key: str) -> bool:
        return key in self.seen

    def remember(self, *keys: str) -> None:
        self.seen = [*self.seen, *keys][-RECENT_IDS_KEPT:]

    def record_opt_out(self, opt_out_id: str, done: OptOutDone) -> None:
        self.opt_outs[opt_out_id] = done
        for old in list(self.opt_outs)[:-OPT_OUTS_KEPT]:
            del self.opt_outs[old]

    def record_action(self, action: ActionTaken, now: datetime) -> None:
        """Keep `action`, dropping those kept that were done more than ACTIONS_LAST before
        `now` (the new one is kept at least until the next action)."""
        current = [a for a in self.actions if a.acted_at > now - ACTIONS_LAST]
        self.actions = sorted([*current, action], key=lambda a: a.acted_at)[-ACTIONS_KEPT:]

    def as_target(self) -> Person | None:
        if self.profile is None:
            return None
        return Person(
            self.profile.age_from,
            self.profile.age_to,
            self.profile.territory,
            frozenset(self.attributes),
        )

    def scheduled(self) -> list[Message]:
        return [m for m in self.messages.values() if m.open]

    def add_message(self, message: Message) -> None:
        self.messages[message.message_id] = message
        closed = sorted((m for m in self.messages.values() if not m.open), key=lambda m: m.due_at)
        for old in closed[:-CLOSED_MESSAGES_KEPT]:
            del self.messages[old.message_id]

    def sent_campaign_message(self, at: datetime) -> None:
        self.campaign_sends = [*self.campaign_sends, at][-CAMPAIGN_SENDS_KEPT:]

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> PersonState:
        return cls.model_validate(data or {})
