"""A territory's agenda as the scheduler keeps it: practitioners, slots, requests, bookings.

Enum fields hold the protobuf enum numbers (emeuse.access.v1); times are aware UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

# Protobuf enum numbers the rules use (emeuse.access.v1).
GP, SPECIALIST = 1, 2
FIRST_LINE, SECOND_LINE = 1, 2
VIDEO, PHONE, NURSE_ASSISTED = 1, 2, 3
IMMEDIATE, SAME_DAY, WITHIN_7_DAYS, ROUTINE = 1, 2, 3, 4
URGENCIES = (IMMEDIATE, SAME_DAY, WITHIN_7_DAYS, ROUTINE)
SCHEDULED, CONFIRMED, STARTED, COMPLETED, NO_SHOW, CANCELLED = 1, 2, 3, 4, 5, 6
REFERRAL_TO_SPECIALIST = 2

# Request statuses (RequestStatus numbers).
WAITING, BOOKED, DONE, REQUEST_CANCELLED, WITHDRAWN = 1, 2, 3, 4, 5
ACTIVE_BOOKING = (SCHEDULED, CONFIRMED, STARTED)


class Location(BaseModel):
    place_id: str = ""
    kind: int = 0
    commune: str = ""
    latitude: float = 0.0
    longitude: float = 0.0
    modalities: list[int] = Field(default_factory=list)

    @property
    def located(self) -> bool:
        return bool(self.latitude or self.longitude)


class Practitioner(BaseModel):
    practitioner_id: str
    profession: int
    specialty: str = ""
    care_line: int = FIRST_LINE
    modalities: list[int]
    place: Location
    active: bool = True


class SlotState(BaseModel):
    slot_id: str
    practitioner_id: str
    start: datetime
    duration_s: float
    modalities: list[int]
    booking_id: str = ""

    @property
    def free(self) -> bool:
        return not self.booking_id


class RequestState(BaseModel):
    request_id: str
    patient: str
    urgency: int
    profession: int
    specialty: str = ""
    modality: int = 0
    place: Location = Field(default_factory=Location)
    referral_booking_id: str = ""
    requested_at: datetime
    received_at: datetime
    status: int = WAITING
    booking_id: str = ""
    bookings_made: int = 0
    flagged_at: datetime | None = None
    # Slots this request gave up (cancelled to be rebooked): never offered to it again.
    declined_slots: list[str] = Field(default_factory=list)
    # The request as made (proto3 JSON), for reads.
    message: dict[str, object] = Field(default_factory=dict)
    # Why it was withdrawn (WithdrawalReason number), status WITHDRAWN.
    withdrawal_reason: int = 0
    # The experiment the request was made in (its event's ce_experiment): its booking,
    # flag, withdrawal and consultation are published in it, whatever caused them (a slot
    # published, a timer). Empty for requests stored before it was kept.
    experiment: str = ""


class BookingState(BaseModel):
    booking_id: str
    request_id: str
    patient: str
    practitioner_id: str
    slot_id: str
    start: datetime
    modality: int
    status: int = SCHEDULED
    booked_at: datetime
    follow_ups: list[int] = Field(default_factory=list)
    referral_specialty: str = ""
    # The request that used this consultation's referral (a referral books once).
    referral_used_by: str = ""
    # The booking that replaced this one (rescheduled): a repeated reschedule answers it.
    moved_to: str = ""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_BOOKING


# How far ahead a slot may be for each urgency: an immediate request is not "booked" into
# next month; with no slot in reach it waits, and is flagged past its booking delay.
HORIZON = {
    IMMEDIATE: timedelta(hours=2),
    SAME_DAY: timedelta(hours=24),
    WITHIN_7_DAYS: timedelta(days=7),
    ROUTINE: timedelta(days=365),
}


def queue_key(request: RequestState) -> tuple[int, datetime, str]:
    """Who is served first: the most urgent, then the earliest asked."""
    return request.urgency, request.requested_at, request.request_id


def booking_deadline(request: RequestState, delays: dict[int, timedelta]) -> datetime:
    """When a request must be booked by, from its urgency."""
    return request.requested_at + delays[request.urgency]
