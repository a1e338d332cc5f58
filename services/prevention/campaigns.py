"""Campaign definitions: from and to CampaignUpdated, checked, and the directory every
instance keeps of them.

Campaigns concern no person, so they are not in the person partitions. Each instance
reads the whole compacted `campaign-updated` topic with a consumer of its own (no group),
into an in-memory directory: targeting and sending run on every instance, for the people
that instance holds, so each needs every campaign. A change applies only on top of the
version before it (domain.campaign.follows); every instance reads one log in one order,
so all reach the same state, and a writer knows whether its change won. The log is
compacted, so the first record read for a campaign may be any version of it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from google.protobuf.message import DecodeError

from emeuse.prevention.v1.prevention_events_pb2 import (
    AudienceMessage,
    CampaignStatus,
    CampaignUpdated,
    FrequencyCap,
    QuietHours,
    Segment,
)
from emeuse.registry import CAMPAIGN_UPDATED
from emeuse.runtime import follower
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import CODE_OF_TERRITORY, TERRITORY_CODES, timestamp
from services.prevention.domain import campaign as domain
from services.prevention.domain.segments import Segment as SegmentModel
from services.prevention.domain.segments import check_segment
from services.prevention.domain.timing import QuietHours as Quiet
from services.prevention.handlers import CODE, check_code, check_language

log = structlog.get_logger("emeuse.prevention.campaigns")
STATUS = {
    domain.DRAFT: CampaignStatus.CAMPAIGN_STATUS_DRAFT,
    domain.APPROVED: CampaignStatus.CAMPAIGN_STATUS_APPROVED,
    domain.RUNNING: CampaignStatus.CAMPAIGN_STATUS_RUNNING,
    domain.PAUSED: CampaignStatus.CAMPAIGN_STATUS_PAUSED,
    domain.FINISHED: CampaignStatus.CAMPAIGN_STATUS_FINISHED,
}
STATUS_NAME = {value: name for name, value in STATUS.items()}
ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_AUDIENCES = 20


def _segment(segment: Segment) -> SegmentModel:
    return SegmentModel(
        age_from=segment.age_from,
        age_to=segment.age_to,
        territories=[CODE_OF_TERRITORY.get(t, "") for t in segment.territories],
        attributes=list(segment.attributes),
    )


def _segment_message(segment: SegmentModel) -> Segment:
    return Segment(
        age_from=segment.age_from,
        age_to=segment.age_to,
        territories=[TERRITORY_CODES[t] for t in segment.territories if t in TERRITORY_CODES],
        attributes=segment.attributes,
    )


def from_message(update: CampaignUpdated) -> domain.CampaignDef:
    """The domain form of a campaign event; InvalidEventError says what is wrong."""
    check_campaign(update)
    return domain.CampaignDef(
        campaign_id=update.campaign_id,
        version=update.version,
        write_id=update.write_id,
        status=STATUS_NAME[update.status],
        label_code=update.label_code,
        segment=_segment(update.segment),
        audiences=[
            domain.Audience(
                segment=_segment(message.audience),
                template_id=message.template_id,
                language=message.language,
                parameters=dict(message.parameters),
            )
            for message in update.messages
        ],
        start_at=update.start_at.ToDatetime(tzinfo=UTC),
        end_at=update.end_at.ToDatetime(tzinfo=UTC),
        cap_max=update.frequency_cap.max_messages,
        cap_per_s=update.frequency_cap.per.ToTimedelta().total_seconds(),
        quiet_start=update.quiet_hours.start_minute,
        quiet_end=update.quiet_hours.end_minute,
        created_by=update.created_by,
        approved_by=update.approved_by,
        experiment_id=update.experiment_id,
    )


def to_message(campaign: domain.CampaignDef) -> CampaignUpdated:
    update = CampaignUpdated(
        campaign_id=campaign.campaign_id,
        version=campaign.version,
        write_id=campaign.write_id,
        status=STATUS[campaign.status],
        label_code=campaign.label_code,
        segment=_segment_message(campaign.segment),
        messages=[
            AudienceMessage(
                audience=_segment_message(a.segment),
                template_id=a.template_id,
                language=a.language,
                parameters=a.parameters,
            )
            for a in campaign.audiences
        ],
        start_at=timestamp(campaign.start_at),
        end_at=timestamp(campaign.end_at),
        quiet_hours=QuietHours(start_minute=campaign.quiet_start, end_minute=campaign.quiet_end),
        created_by=campaign.created_by,
        approved_by=campaign.approved_by,
        experiment_id=campaign.experiment_id,
    )
    if campaign.cap_max:
        update.frequency_cap.CopyFrom(FrequencyCap(max_messages=campaign.cap_max))
        update.frequency_cap.per.FromTimedelta(timedelta(seconds=campaign.cap_per_s))
    return update


def check_campaign(update: CampaignUpdated) -> None:
    """A campaign that can run: ids and codes, a window, at least one audience message."""
    if not ID.fullmatch(update.campaign_id):
        raise InvalidEventError("campaign_id must be an id (lowercase letters, digits, . _ -)")
    if update.status not in STATUS_NAME or update.status == CampaignStatus.CAMPAIGN_STATUS_RUNNING:
        raise InvalidEventError("status must be draft, approved, paused or finished")
    if update.label_code:
        check_code(update.label_code, "label_code")
    for who in (update.created_by, update.approved_by, update.changed_by):
        if who:
            check_code(who, "staff ids")
    if not update.HasField("start_at") or not update.HasField("end_at"):
        raise InvalidEventError("a campaign needs start_at and end_at")
    if update.end_at.ToDatetime() <= update.start_at.ToDatetime():
        raise InvalidEventError("end_at must be after start_at")
    if not update.messages or len(update.messages) > MAX_AUDIENCES:
        raise InvalidEventError(f"a campaign needs 1 to {MAX_AUDIENCES} audience messages")
    for segment in (update.segment, *(m.audience for m in update.messages)):
        if any(t not in CODE_OF_TERRITORY for t in segment.territories):
            raise InvalidEventError("segment territories must be 52, 54 or 55")
        for attribute in segment.attributes:
            check_code(attribute, "attributes")
        try:
            check_segment(_segment(segment))
        except ValueError as exc:
            raise InvalidEventError(str(exc)) from None
    for message in update.messages:
        check_code(message.template_id, "template_id")
        check_language(message.language)
        for key, value in message.parameters.items():
            if not CODE.fullmatch(key) or not CODE.fullmatch(value):
                raise InvalidEventError(
                    "template parameters are codes, never names or free text "
                    "(lowercase letters, digits, . _ : + -)"
                )
    cap = update.frequency_cap
    if update.HasField("frequency_cap") and (cap.max_messages < 1 or cap.per.ToSeconds() < 1):
        raise InvalidEventError("frequency_cap needs max_messages >= 1 and a period")
    try:
        Quiet(update.quiet_hours.start_minute, update.quiet_hours.end_minute)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None


class Directory:
    """Every campaign, as this instance read them from the log.

    Fed by emeuse.runtime.follower: on each (re)start of the feed the log is read into a
    fresh copy (`reloading`), swapped in once caught up (`caught_up`), then `ready` is set.
    Listeners hear of every change to the campaigns in use: when each person's next step
    is depends on them.
    """

    def __init__(self) -> None:
        self.campaigns: dict[str, domain.CampaignDef] = {}
        self.ready = asyncio.Event()
        self._fresh: dict[str, domain.CampaignDef] | None = None
        self._listeners: list[Callable[[], None]] = []

    def listen(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def get(self, campaign_id: str) -> domain.CampaignDef | None:
        return self.campaigns.get(campaign_id)

    def active(self, now: datetime) -> list[domain.CampaignDef]:
        return [c for c in self.campaigns.values() if c.sends(now)]

    def reloading(self) -> None:
        self._fresh = {}

    def caught_up(self) -> None:
        if self._fresh is not None:
            self.campaigns, self._fresh = self._fresh, None
        log.info("campaign.directory_ready", campaigns=len(self.campaigns))
        # Ready before the listeners hear of it: they read the directory as ready.
        self.ready.set()
        self._changed()

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        self.apply(value)

    def apply(self, value: bytes | None) -> bool:
        """Apply one record of the log; False when it is not a valid next change."""
        if value is None:
            return False
        try:
            update = CampaignUpdated.FromString(value)
            campaign = from_message(update)
        except (DecodeError, InvalidEventError) as exc:
            log.warning("campaign.unreadable", error=type(exc).__name__)
            return False
        campaigns = self._fresh if self._fresh is not None else self.campaigns
        if not domain.follows(campaigns.get(campaign.campaign_id), campaign):
            return False
        campaigns[campaign.campaign_id] = campaign
        log.info("campaign.updated", campaign_id=campaign.campaign_id, version=campaign.version)
        if campaigns is self.campaigns:
            self._changed()
        return True


async def keep_following(
    directory: Directory, bootstrap: str, stopping: Callable[[], bool]
) -> None:
    """Read the campaign log from its beginning, then follow it, for as long as the worker
    runs, started again after a broker failure."""
    await follower.keep_following(
        CAMPAIGN_UPDATED.name,
        CAMPAIGN_UPDATED.partitions,
        directory.apply_record,
        directory.ready,
        bootstrap,
        stopping,
        reloading=directory.reloading,
        caught_up=directory.caught_up,
    )
