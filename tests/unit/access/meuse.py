"""A Meuse agenda in plain dicts, with builders for its events and actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration

from emeuse.access.v1.access_events_pb2 import (
    AvailabilityPublished,
    BookingAction,
    BookingActionRequested,
    CareLine,
    ConsultationRequested,
    ConsultationStatusChanged,
    Modality,
    Place,
    PlaceKind,
    PlaceRegistered,
    PractitionerRegistered,
    Profession,
    RequesterRole,
    RequestFlagged,
    Slot,
    SlotBooked,
    Urgency,
)
from emeuse.registry import CONSULTATION_STATUS_CHANGED, REQUEST_FLAGGED, SLOT_BOOKED
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.events import Fact
from emeuse.runtime.pseudonym import derive_pseudonym
from services.access import scheduling
from services.access.config import (
    DEFAULT_BOOKING_DELAYS,
    parse_booking_delays,
    parse_coordinators,
)
from services.access.scheduling import Agenda, AgendaTables, Result

TERRITORY = "55"
# Monday 30 November 2026, 08:00 UTC: the day the agenda is filled.
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
DELAYS = parse_booking_delays("EMEUSE_ACCESS_BOOKING_DELAYS", DEFAULT_BOOKING_DELAYS)
COORDINATORS = parse_coordinators("EMEUSE_ACCESS_COORDINATORS", "55=dac-meuse")
KEY = b"unit-tests-pseudonymisation-key!"


@dataclass(frozen=True)
class Town:
    commune: str
    latitude: float
    longitude: float


BAR_LE_DUC = Town("55029", 48.77, 5.16)
VERDUN = Town("55545", 49.16, 5.38)
COMMERCY = Town("55122", 48.76, 5.59)
SAINT_MIHIEL = Town("55463", 48.89, 5.54)
STENAY = Town("55502", 49.49, 5.19)

VIDEO = Modality.MODALITY_VIDEO
PHONE = Modality.MODALITY_PHONE
NURSE_ASSISTED = Modality.MODALITY_NURSE_ASSISTED
GP = Profession.PROFESSION_GP
SPECIALIST = Profession.PROFESSION_SPECIALIST
NURSE = Profession.PROFESSION_NURSE
FIRST_LINE = CareLine.CARE_LINE_FIRST
SECOND_LINE = CareLine.CARE_LINE_SECOND
IMMEDIATE = Urgency.URGENCY_IMMEDIATE
SAME_DAY = Urgency.URGENCY_SAME_DAY
WITHIN_7_DAYS = Urgency.URGENCY_WITHIN_7_DAYS
ROUTINE = Urgency.URGENCY_ROUTINE


def at(hour: int, minute: int = 0, days: int = 0) -> datetime:
    return NOW.replace(hour=hour, minute=minute) + timedelta(days=days)


def patient(name: str) -> str:
    return derive_pseudonym(f"ins-{name}", KEY)


def place(
    town: Town | None,
    kind: int = PlaceKind.PLACE_KIND_HOME,
    modalities: tuple[int, ...] = (),
    place_id: str = "",
) -> Place:
    if town is None or kind == PlaceKind.PLACE_KIND_HOME:
        # A home is located by its commune alone: never its coordinates.
        commune = town.commune if town is not None else ""
        return Place(kind=kind, commune=commune, modalities=modalities, place_id=place_id)
    return Place(
        place_id=place_id,
        kind=kind,
        commune=town.commune,
        latitude=town.latitude,
        longitude=town.longitude,
        modalities=modalities,
    )


def practitioner(
    practitioner_id: str,
    town: Town,
    *,
    profession: int = GP,
    specialty: str = "",
    care_line: int = FIRST_LINE,
    modalities: tuple[int, ...] = (VIDEO, PHONE),
    active: bool = True,
) -> PractitionerRegistered:
    return PractitionerRegistered(
        practitioner_id=practitioner_id,
        territory=TERRITORY,
        profession=profession,
        specialty=specialty,
        care_line=care_line,
        modalities=modalities,
        place=place(town, PlaceKind.PLACE_KIND_HEALTH_CENTRE, place_id=f"msp-{town.commune}"),
        active=active,
    )


def place_registered(where: Place) -> PlaceRegistered:
    return PlaceRegistered(territory=TERRITORY, place=where)


def slot_id(practitioner_id: str, start: datetime) -> str:
    return f"{practitioner_id}-{start:%m%d-%H%M}"


def availability(
    practitioner_id: str, *starts: datetime, modalities: tuple[int, ...] = (), minutes: int = 20
) -> AvailabilityPublished:
    return AvailabilityPublished(
        practitioner_id=practitioner_id,
        territory=TERRITORY,
        slots=[
            Slot(
                slot_id=slot_id(practitioner_id, start),
                practitioner_id=practitioner_id,
                start=timestamp(start),
                duration=Duration(seconds=minutes * 60),
                modalities=modalities,
            )
            for start in starts
        ],
    )


def consultation(
    request_id: str,
    *,
    who: str | None = None,
    urgency: int = ROUTINE,
    requested_at: datetime = NOW,
    where: Place | None = None,
    profession: int = GP,
    specialty: str = "",
    modality: int = 0,
    referral: str = "",
    reason: str = "renewal.chronic_treatment",
) -> ConsultationRequested:
    return ConsultationRequested(
        request_id=request_id,
        territory=TERRITORY,
        patient_pseudonym=patient(who or request_id),
        urgency=urgency,
        profession=profession,
        specialty=specialty,
        modality=modality,
        place=where if where is not None else place(BAR_LE_DUC),
        reason_code=reason,
        requested_by=RequesterRole.REQUESTER_ROLE_NURSE,
        requester_id="ide-ehpad-55029",
        referral_booking_id=referral,
        requested_at=timestamp(requested_at),
    )


def action(kind: int, action_id: str, **fields: object) -> BookingActionRequested:
    return BookingActionRequested(
        action_id=action_id, territory=TERRITORY, action=kind, actor_id="ide-ehpad-55029", **fields
    )


BOOK_SLOT = BookingAction.BOOKING_ACTION_BOOK_SLOT
CONFIRM = BookingAction.BOOKING_ACTION_CONFIRM
RESCHEDULE = BookingAction.BOOKING_ACTION_RESCHEDULE
CANCEL = BookingAction.BOOKING_ACTION_CANCEL
RECORD_OUTCOME = BookingAction.BOOKING_ACTION_RECORD_OUTCOME
DELAY_DUE = BookingAction.BOOKING_ACTION_DELAY_DUE


class Meuse:
    """The Meuse agenda over dict tables, and every fact it published."""

    def __init__(self) -> None:
        self.tables = AgendaTables({}, {}, {}, {}, {}, {})
        self.agenda = Agenda(TERRITORY, self.tables)
        self.facts: list[Fact] = []

    def _keep(self, result: Result) -> Result:
        self.facts.extend(result.facts)
        return result

    def register(self, message: PractitionerRegistered, now: datetime = NOW) -> Result:
        return self._keep(scheduling.register_practitioner(self.agenda, message, now))

    def register_place(self, where: Place) -> Result:
        return self._keep(scheduling.register_place(self.agenda, place_registered(where)))

    def publish(self, message: AvailabilityPublished, now: datetime = NOW) -> Result:
        return self._keep(scheduling.publish_availability(self.agenda, message, now))

    def ask(self, message: ConsultationRequested, now: datetime = NOW) -> Result:
        return self._keep(scheduling.request_consultation(self.agenda, message, now))

    def act(self, message: BookingActionRequested, now: datetime = NOW) -> Result:
        return self._keep(
            scheduling.apply_action(
                self.agenda, message, now, delays=DELAYS, coordinators=COORDINATORS
            )
        )

    def booking_of(self, request_id: str) -> str:
        request = self.agenda.request(request_id)
        assert request is not None and request.booking_id, f"{request_id} is not booked"
        return request.booking_id

    def slot_of(self, request_id: str) -> str:
        booking = self.agenda.booking(self.booking_of(request_id))
        assert booking is not None
        return booking.slot_id

    def outcome(self, action_id: str) -> dict[str, object] | None:
        return self.agenda.action_outcome(action_id)


def booked(result: Result) -> list[SlotBooked]:
    return [f.message for f in result.facts if f.spec is SLOT_BOOKED]


def changed(result: Result) -> list[ConsultationStatusChanged]:
    return [f.message for f in result.facts if f.spec is CONSULTATION_STATUS_CHANGED]


def flagged(result: Result) -> list[RequestFlagged]:
    return [f.message for f in result.facts if f.spec is REQUEST_FLAGGED]


def given(result: Result) -> dict[str, str]:
    """Request id -> slot id, for every SlotBooked of the result."""
    return {b.request_id: b.slot_id for b in booked(result)}
