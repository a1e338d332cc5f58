"""Building prevention inputs for unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1.prevention_events_pb2 import (
    DeliveryReceiptReported,
    OptOutRecorded,
    PersonAction,
    PersonActionRequested,
    PersonEnrolled,
    ProgrammeStarted,
    QuietHours,
)
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym
from services.prevention.domain.campaign import APPROVED, Audience, CampaignDef
from services.prevention.domain.person import PersonState
from services.prevention.domain.segments import Segment
from services.prevention.handlers import Delays, enrol

NOW = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Paris
DELAYS = Delays()


def enrolment(
    person: str,
    band: tuple[int, int] = (15, 19),
    channels: tuple[str, ...] = ("app", "sms"),
    territory: int = Territory.TERRITORY_MEUSE,
    quiet: tuple[int, int] = (0, 0),
) -> PersonEnrolled:
    return PersonEnrolled(
        person_pseudonym=person,
        age_band_from=band[0],
        age_band_to=band[1],
        territory=territory,  # type: ignore[arg-type]
        allowed_channels=channels,
        quiet_hours=QuietHours(start_minute=quiet[0], end_minute=quiet[1]),
    )


def enrolled(**kwargs: object) -> tuple[str, PersonState]:
    person = random_pseudonym()
    outcome = enrol(enrolment(person, **kwargs), state=PersonState(), now=NOW, delays=DELAYS)  # type: ignore[arg-type]
    return person, outcome.state


def campaign(**fields: object) -> CampaignDef:
    data: dict[str, object] = {
        "campaign_id": "cmp-hpv",
        "version": 2,
        "write_id": "w",
        "status": APPROVED,
        "segment": Segment(age_from=11, age_to=19, territories=["55"]),
        "audiences": [Audience(template_id="campaign.hpv.teen")],
        "start_at": NOW,
        "end_at": NOW + timedelta(days=30),
        "created_by": "staff-1",
    }
    data.update(fields)
    return CampaignDef.model_validate(data)


def action(person: str, kind: int, **fields: str) -> PersonActionRequested:
    return PersonActionRequested(
        action_id=str(uuid.uuid4()),
        person_pseudonym=person,
        action=kind,  # type: ignore[arg-type]
        requested_at=timestamp(NOW),
        **fields,
    )


def target(person: str, campaign_id: str = "cmp-hpv") -> PersonActionRequested:
    return action(person, PersonAction.PERSON_ACTION_TARGET_CAMPAIGN, campaign_id=campaign_id)


def send(person: str, message_id: str) -> PersonActionRequested:
    return action(person, PersonAction.PERSON_ACTION_SEND_MESSAGE, message_id=message_id)


def opt_out(person: str, *channels: str) -> OptOutRecorded:
    return OptOutRecorded(person_pseudonym=person, opt_out_id=str(uuid.uuid4()), channels=channels)


def receipt(person: str, message_id: str, status: int, attempt: int = 1) -> DeliveryReceiptReported:
    return DeliveryReceiptReported(
        receipt_id=str(uuid.uuid4()),
        message_id=message_id,
        person_pseudonym=person,
        status=status,  # type: ignore[arg-type]
        attempt=attempt,
    )


def pregnancy(person: str, due: date) -> ProgrammeStarted:
    start = ProgrammeStarted(person_pseudonym=person, start_id=str(uuid.uuid4()), programme=1)
    start.expected_due_date.FromDatetime(datetime.combine(due, datetime.min.time()))
    return start
