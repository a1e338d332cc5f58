"""A person's steps in time: what is due (the messages to send, the campaigns to target),
when the next one is, and what one step does. Plain functions over the person's state and
the campaign directory; processing.py runs them as the kernel's timer.
"""

from __future__ import annotations

from datetime import datetime

from emeuse.prevention.v1.prevention_events_pb2 import PersonAction, PersonActionRequested
from emeuse.runtime.envelope import timestamp
from services.prevention import handlers
from services.prevention.campaigns import Directory
from services.prevention.domain.campaign import PAUSED
from services.prevention.domain.person import Message, PersonState
from services.prevention.handlers import Delays, Outcome, derived_id


def _waits_for_campaign(message: Message, directory: Directory, now: datetime) -> bool:
    """A campaign message is not sent while its campaign is unknown (the log is still being
    read, so never a reason to cancel) or paused: a directory change times it again."""
    if not message.campaign_id:
        return False
    campaign = directory.get(message.campaign_id) if directory.ready.is_set() else None
    return campaign is None or campaign.status_at(now) == PAUSED


def due_actions(
    person: str, state: PersonState, directory: Directory, now: datetime
) -> list[PersonActionRequested]:
    """The steps due now: the messages to send, the campaigns to target. Campaign work
    waits until the campaign log is read (directory.ready)."""
    if state.profile is None or not state.profile.territory:
        return []
    wanted: list[PersonActionRequested] = []
    for message in state.scheduled():
        if message.due_at > now or _waits_for_campaign(message, directory, now):
            continue
        wanted.append(
            PersonActionRequested(
                action_id=derived_id(
                    message.message_id,
                    "send",
                    str(message.attempts),
                    message.due_at.isoformat(),
                ),
                person_pseudonym=person,
                action=PersonAction.PERSON_ACTION_SEND_MESSAGE,
                message_id=message.message_id,
                requested_at=timestamp(now),
            )
        )
    for campaign in directory.active(now) if directory.ready.is_set() else []:
        if handlers.wants_campaign(state, campaign, now):
            wanted.append(
                PersonActionRequested(
                    action_id=derived_id(person, campaign.campaign_id, "target"),
                    person_pseudonym=person,
                    action=PersonAction.PERSON_ACTION_TARGET_CAMPAIGN,
                    campaign_id=campaign.campaign_id,
                    requested_at=timestamp(now),
                )
            )
    return wanted


def next_step_at(state: PersonState, directory: Directory, now: datetime) -> datetime | None:
    """When the person's next step is due: the earliest message to send, or now when a
    campaign of the directory is to target them. A campaign created, approved, paused or
    resumed later changes this: the directory asks for every person's to be computed again."""
    if state.profile is None or not state.profile.territory:
        return None
    moments = [
        message.due_at
        for message in state.scheduled()
        if not _waits_for_campaign(message, directory, now)
    ]
    if directory.ready.is_set() and any(
        handlers.wants_campaign(state, campaign, now) for campaign in directory.active(now)
    ):
        moments.append(now)
    return min(moments, default=None)


def act(
    action: PersonActionRequested,
    *,
    state: PersonState,
    now: datetime,
    directory: Directory,
    delays: Delays,
) -> Outcome:
    """One step for the person: target a campaign, send a due message, or plan a
    consultation's follow-up. Until the campaign log is read no campaign is known, and
    the handlers take an unknown campaign as "later", never as finished."""
    ready = directory.ready.is_set()
    if action.action == PersonAction.PERSON_ACTION_TARGET_CAMPAIGN:
        campaign = directory.get(action.campaign_id) if ready else None
        return handlers.target_campaign(action, campaign=campaign, state=state, now=now)
    if action.action == PersonAction.PERSON_ACTION_SEND_MESSAGE:
        message = state.messages.get(action.message_id)
        campaign = directory.get(message.campaign_id) if message and ready else None
        return handlers.send_message(action, campaign=campaign, state=state, now=now)
    if action.action == PersonAction.PERSON_ACTION_FOLLOW_UP_CONSULTATION:
        return handlers.follow_up_consultation(action, state=state, now=now, delays=delays)
    raise handlers.InvalidEventError("action must be set")
