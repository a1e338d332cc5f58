"""Access use cases: one territory's agenda, changed by its single writer.

Every change to a territory's agenda (directory, slots, requests, bookings) arrives on a
topic keyed by the territory, so the territory's partition task, handling one record at
a time, is its only writer. Two requests racing for a slot are two records in one
partition: the first is booked, the second sees the slot taken. With two instances, the
partition is still one instance's. Facts published are SlotBooked, ConsultationStatusChanged and
RequestFlagged; refused actions are recorded for the caller (gRPC) to read.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from google.protobuf import json_format
from pydantic import BaseModel, TypeAdapter

from emeuse.access.v1.access_events_pb2 import (
    AvailabilityPublished,
    BookingAction,
    BookingActionRequested,
    ConsultationRequested,
    ConsultationStatusChanged,
    Modality,
    Place,
    PlaceKind,
    PlaceRegistered,
    PractitionerRegistered,
    Profession,
    RequestFlagged,
    RequestWithdrawn,
    SlotBooked,
    WithdrawalReason,
)
from emeuse.registry import (
    CONSULTATION_STATUS_CHANGED,
    REQUEST_FLAGGED,
    REQUEST_WITHDRAWN,
    SLOT_BOOKED,
)
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import TERRITORY_CODES, timestamp
from emeuse.runtime.events import Fact
from emeuse.runtime.pseudonym import is_pseudonym
from services.access.domain.agenda import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    CONFIRMED,
    DONE,
    HORIZON,
    NO_SHOW,
    REFERRAL_TO_SPECIALIST,
    REQUEST_CANCELLED,
    ROUTINE,
    SCHEDULED,
    SECOND_LINE,
    STARTED,
    URGENCIES,
    WAITING,
    WITHDRAWN,
    BookingState,
    Location,
    Practitioner,
    RequestState,
    SlotState,
    booking_deadline,
    queue_key,
)
from services.access.domain.matching import Match, best_slot, distance_km, suitable
from services.access.indexes import Indexes, Need, need_of_practitioner, need_of_request

NAMESPACE = uuid.UUID("a11ce55e-5c4e-4d55-8a55-e4e05e000055")
CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
COMMUNE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")
CLOCK_SKEW = timedelta(minutes=5)
OLDEST_REQUEST = timedelta(days=30)
# Outcomes may be recorded from a little before the slot's start (a practitioner early).
OUTCOME_TOLERANCE = timedelta(minutes=15)
Model = TypeVar("Model", bound=BaseModel)
MessageWithPlace = TypeVar("MessageWithPlace", ConsultationRequested, PractitionerRegistered)


_TIME = TypeAdapter(datetime)


def _json_time(moment: datetime) -> str:
    # The form pydantic stores times in (UTC, "Z"): comparable as text with stored ones.
    return str(_TIME.dump_python(moment.astimezone(UTC), mode="json"))


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


class Rows(Protocol):
    """A table as the agenda uses it: the kernel's (services.access.state), a dict in tests."""

    def get(self, key: str, /) -> Any: ...
    def __setitem__(self, key: str, value: Any, /) -> None: ...
    def items(self) -> Iterable[tuple[str, Any]]: ...


@dataclass
class AgendaTables:
    """The service's tables, keyed "<territory>|<id>" (plain dicts in unit tests)."""

    practitioners: Rows
    slots: Rows
    requests: Rows
    bookings: Rows
    actions: Rows
    places: Rows
    # The agenda's indexes (services.access.indexes); a fresh dict in unit tests.
    indexes: Rows = field(default_factory=lambda: dict[str, Any]())


TABLE_NAMES = ("practitioners", "slots", "requests", "bookings", "actions", "places", "indexes")


class Agenda:
    """One territory's agenda over the tables.

    In a handler the tables are the running transaction's (services.access.state): what
    the scheduler writes is committed with the events it publishes, or not at all. With
    `staged`, writes are kept aside and never reach the tables: a dry run, for a gRPC call
    to hear now what the scheduler would refuse.
    """

    def __init__(self, territory: str, tables: AgendaTables, *, staged: bool = False) -> None:
        self.territory = territory
        self.tables = tables
        self._staged: dict[str, dict[str, Any]] | None = (
            {name: {} for name in TABLE_NAMES} if staged else None
        )
        self.indexes = Indexes(
            lambda entity_id: self._raw("indexes", entity_id),
            lambda entity_id, value: self._put("indexes", entity_id, value),
            self._rows,
        )
        # Practitioners read while matching, by id (None: not registered); this agenda's
        # own writes keep it right.
        self._known: dict[str, Practitioner | None] = {}

    def key(self, entity_id: str) -> str:
        return f"{self.territory}|{entity_id}"

    def _raw(self, name: str, entity_id: str) -> Any:
        key = self.key(entity_id)
        if self._staged is not None and key in self._staged[name]:
            return self._staged[name][key]
        return getattr(self.tables, name).get(key)

    def _put(self, name: str, entity_id: str, data: Any) -> None:
        if self._staged is not None:
            self._staged[name][self.key(entity_id)] = data
        else:
            getattr(self.tables, name)[self.key(entity_id)] = data

    def _rows(self, name: str) -> list[dict[str, Any]]:
        """The territory's stored rows of a table, staged writes included."""
        prefix = f"{self.territory}|"
        rows = {
            k: v for k, v in list(getattr(self.tables, name).items()) if str(k).startswith(prefix)
        }
        if self._staged is not None:
            rows.update(self._staged[name])
        return [row for row in rows.values() if row]

    def _get(self, name: str, entity_id: str, model: type[Model]) -> Model | None:
        data = self._raw(name, entity_id)
        return model.model_validate(data) if data else None

    def practitioner(self, practitioner_id: str) -> Practitioner | None:
        return self._get("practitioners", practitioner_id, Practitioner)

    def place(self, place_id: str) -> Location | None:
        return self._get("places", place_id, Location)

    def places(self) -> list[Location]:
        return [Location.model_validate(row) for row in self._rows("places")]

    def slot(self, slot_id: str) -> SlotState | None:
        return self._get("slots", slot_id, SlotState)

    def request(self, request_id: str) -> RequestState | None:
        return self._get("requests", request_id, RequestState)

    def booking(self, booking_id: str) -> BookingState | None:
        return self._get("bookings", booking_id, BookingState)

    def practitioners(self) -> dict[str, Practitioner]:
        found = (Practitioner.model_validate(row) for row in self._rows("practitioners"))
        return {p.practitioner_id: p for p in found}

    def slots(self) -> list[SlotState]:
        return [SlotState.model_validate(row) for row in self._rows("slots")]

    def free_slots(self, now: datetime) -> list[SlotState]:
        """Slots not booked and not started, filtered on the stored JSON before parsing."""
        at = _json_time(now)
        return [
            SlotState.model_validate(row)
            for row in self._rows("slots")
            if not row["booking_id"] and row["start"] >= at
        ]

    def slot_use(self, now: datetime) -> tuple[int, int]:
        """(booked, published) slots not started yet, counted on the stored JSON."""
        at = _json_time(now)
        upcoming = [row for row in self._rows("slots") if row["start"] >= at]
        return sum(1 for row in upcoming if row["booking_id"]), len(upcoming)

    def requests(self) -> list[RequestState]:
        return [RequestState.model_validate(row) for row in self._rows("requests")]

    def bookings(self) -> list[BookingState]:
        return [BookingState.model_validate(row) for row in self._rows("bookings")]

    def waiting(self) -> list[RequestState]:
        """Requests in line, in the order they are served (only those are parsed)."""
        line = (
            RequestState.model_validate(row)
            for row in self._rows("requests")
            if row.get("status") == WAITING
        )
        return sorted(line, key=queue_key)

    def known_practitioner(self, practitioner_id: str) -> Practitioner | None:
        """A practitioner, read once per agenda (matching reads each many times)."""
        if practitioner_id not in self._known:
            self._known[practitioner_id] = self.practitioner(practitioner_id)
        return self._known[practitioner_id]

    def _need_of(self, practitioner_id: str) -> Need | None:
        known = self.known_practitioner(practitioner_id)
        return need_of_practitioner(known) if known is not None else None

    def practitioner_slots(self, practitioner_id: str) -> list[SlotState]:
        """A practitioner's slots, found by the index (not a scan of the territory)."""
        found = (self.slot(slot_id) for slot_id in self.indexes.slots_of(practitioner_id))
        return [slot for slot in found if slot is not None]

    def line(self, needs: Iterable[Need]) -> list[RequestState]:
        """The requests of these needs in line, in the order they are served."""
        found = (
            self.request(request_id) for need in needs for request_id in self.indexes.line(need)
        )
        return sorted((r for r in found if r is not None and r.status == WAITING), key=queue_key)

    def save_practitioner(self, p: Practitioner) -> None:
        before = self._need_of(p.practitioner_id)
        self._put("practitioners", p.practitioner_id, p.model_dump(mode="json"))
        self._known[p.practitioner_id] = p.model_copy(deep=True)
        after = need_of_practitioner(p)
        if before != after:
            free = [s for s in self.practitioner_slots(p.practitioner_id) if s.free]
            self.indexes.practitioner_moved(p.practitioner_id, before, after, free)

    def save_place(self, place: Location) -> None:
        self._put("places", place.place_id, place.model_dump(mode="json"))

    def save_slot(self, slot: SlotState) -> None:
        self._put("slots", slot.slot_id, slot.model_dump(mode="json"))
        self.indexes.slot_saved(slot, self._need_of(slot.practitioner_id))

    def save_request(self, request: RequestState) -> None:
        self._put("requests", request.request_id, request.model_dump(mode="json"))
        self.indexes.request_saved(request)

    def save_booking(self, booking: BookingState) -> None:
        self._put("bookings", booking.booking_id, booking.model_dump(mode="json"))

    def action_outcome(self, action_id: str) -> dict[str, Any] | None:
        return self._raw("actions", action_id) or None

    def record_action(self, action_id: str, outcome: dict[str, Any]) -> None:
        self._put("actions", action_id, outcome)

    def set_in_force(self, kind: str, entity_id: str, event_id: str) -> None:
        """Keep which event set a directory entry or a slot as it stands, for a call
        asked again (a lost answer) to be answered with it (services.access.repeats)."""
        if event_id:
            self.record_action(f"{kind}-in-force:{entity_id}", {"event_id": event_id})

    def in_force(self, kind: str, entity_id: str) -> str:
        """The id of the event that set this entry as it stands; "" if unknown."""
        return str((self.action_outcome(f"{kind}-in-force:{entity_id}") or {}).get("event_id", ""))


@dataclass
class Observation:
    """A measure for the metrics: what happened, at which urgency, after how long."""

    what: str
    urgency: int
    seconds: float = 0.0


@dataclass
class Result:
    facts: list[Fact] = field(default_factory=list)
    outcome: str = ""
    observations: list[Observation] = field(default_factory=list)
    # The booking an action made (book, reschedule); the action's own booking otherwise.
    booking_id: str = ""


class ActionRefused(Exception):
    """An action the agenda cannot take now; `code` is the gRPC status name for callers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def location(place: Any) -> Location:
    return Location(
        place_id=place.place_id,
        kind=place.kind,
        commune=place.commune,
        latitude=place.latitude,
        longitude=place.longitude,
        modalities=list(place.modalities),
    )


class PlaceNotRegistered(InvalidEventError):
    """A place named by its place_id alone that the territory's directory does not hold."""


def place_message(place: Location) -> Place:
    return Place(
        place_id=place.place_id,
        kind=place.kind,  # type: ignore[arg-type]
        commune=place.commune,
        latitude=place.latitude,
        longitude=place.longitude,
        modalities=place.modalities,  # type: ignore[arg-type]
    )


def named_only(place: Place) -> bool:
    """Whether a place is named by its place_id and nothing else: the directory's place."""
    return bool(place.place_id) and not (
        place.kind or place.commune or place.latitude or place.longitude or place.modalities
    )


def place_from_directory(agenda: Agenda, place: Place) -> Place:
    """The place to match with: the directory's for a place named by its place_id alone,
    else the place as given (inline places are used as they are)."""
    if not named_only(place):
        return place
    known = agenda.place(place.place_id)
    if known is None:
        raise PlaceNotRegistered(
            f"place {place.place_id!r} is not in the directory of territory "
            f"{agenda.territory}: RegisterPlace first, or give the place's commune"
        )
    return place_message(known)


def request_place(agenda: Agenda, message: ConsultationRequested) -> Place:
    """The place a request is matched with (see place_from_directory). A request naming a
    directory place that lists the remote care it hosts, and asking for a modality the
    place does not host, could never be booked: it is refused (InvalidEventError)."""
    place = place_from_directory(agenda, message.place)
    if (
        named_only(message.place)
        and message.modality
        and place.modalities
        and message.modality not in place.modalities
    ):
        hosted = ", ".join(_modality_name(m) for m in place.modalities)
        raise InvalidEventError(
            f"place {place.place_id!r} does not host {_modality_name(message.modality)} "
            f"consultations (it hosts {hosted}): ask for one of those, or no modality"
        )
    return place


def _modality_name(modality: int) -> str:
    return Modality.Name(modality).removeprefix("MODALITY_").lower().replace("_", "-")  # type: ignore[arg-type]


def check_place(message: PlaceRegistered) -> None:
    """What a place needs to be in the directory; InvalidEventError says what is wrong."""
    if message.territory not in TERRITORY_CODES:
        raise InvalidEventError("territory must be a programme département: 52, 54 or 55")
    if not message.HasField("place"):
        raise InvalidEventError("no place to register")
    place = message.place
    if place.kind == PlaceKind.PLACE_KIND_HOME:
        raise InvalidEventError(
            "a home is never registered: it has no place_id, a request locates it by its "
            "commune alone"
        )
    if not ID.fullmatch(place.place_id):
        raise InvalidEventError("place.place_id must be an id ([A-Za-z0-9._:-])")
    if not place.kind or place.kind not in PlaceKind.values():
        raise InvalidEventError(
            "place.kind must be an EHPAD, a pharmacy cabin, a health centre, a hospital or a "
            "practice"
        )
    if not COMMUNE.fullmatch(place.commune):
        raise InvalidEventError("place.commune must be an INSEE commune code, e.g. 55029")
    if not place.commune.startswith(message.territory):
        raise InvalidEventError(
            f"place.commune {place.commune} is not in territory {message.territory}"
        )
    known = {Modality.MODALITY_VIDEO, Modality.MODALITY_PHONE, Modality.MODALITY_NURSE_ASSISTED}
    if not place.modalities or not set(place.modalities) <= known:
        raise InvalidEventError(
            "place must host remote care: video, phone and/or nurse-assisted modalities"
        )
    if not (-90 <= place.latitude <= 90 and -180 <= place.longitude <= 180):
        raise InvalidEventError("place.latitude and place.longitude must be in degrees")
    if not location(place).located:
        raise InvalidEventError(
            "a registered place is located: give place.latitude and place.longitude "
            "(degrees, not both 0)"
        )


def place_registration_id(event_id: str) -> str:
    """Where the outcome of the PlaceRegistered `event_id` is recorded (actions table)."""
    return f"place-registered:{event_id}"


def register_place(agenda: Agenda, message: PlaceRegistered, event_id: str = "") -> Result:
    """A place joins the directory; the same place_id again replaces it. Requests and
    practitioners that named it before keep the place as it was when they did.

    The registration is recorded by its event id, for RegisterPlace to answer once this
    very registration is applied: comparing the stored place with the one asked for
    would never match for a client whose Place has fields this service does not know
    (protobuf equality compares unknown fields), nor for two registrations of one
    place_id applied back to back (the first is replaced before its caller looks)."""
    check_place(message)
    agenda.save_place(location(message.place))
    agenda.set_in_force("place", message.place.place_id, event_id)
    if event_id:
        agenda.record_action(
            place_registration_id(event_id), {"ok": True, "place_id": message.place.place_id}
        )
    return Result(outcome="place_registered")


def check_home(place: Place) -> None:
    """A home is located by its commune alone: nothing on the bus may locate or name a
    person. The service knows no commune's coordinates, so it cannot tell a commune's
    from an address: a home with coordinates, or with a place_id, is refused; so are
    coordinates of a place that says neither what it is nor its directory id."""
    if not place.kind and not place.place_id and (place.latitude or place.longitude):
        raise InvalidEventError(
            "a place given by its coordinates says what it is (place.kind); a home gives "
            "its commune alone"
        )
    if place.kind != PlaceKind.PLACE_KIND_HOME:
        return
    if place.place_id:
        raise InvalidEventError(
            "a home has no place_id (it is never registered): give its commune alone"
        )
    if place.latitude or place.longitude:
        raise InvalidEventError(
            "a home is located by its commune alone: give no latitude or longitude "
            "(a home's coordinates are an address)"
        )


def check_practitioner(message: PractitionerRegistered) -> None:
    if not CODE.fullmatch(message.practitioner_id):
        raise InvalidEventError("practitioner_id must be a directory id ([a-z0-9._-])")
    if not message.profession:
        raise InvalidEventError("practitioner has no profession")
    if not message.care_line:
        raise InvalidEventError("practitioner has no care line (first or second)")
    if not message.modalities:
        raise InvalidEventError("practitioner offers no modality")
    if message.specialty and not CODE.fullmatch(message.specialty):
        raise InvalidEventError("specialty must be a code ([a-z0-9._-])")
    if not message.HasField("place") or not (message.place.kind or named_only(message.place)):
        raise InvalidEventError("practitioner has no place")
    if message.place.place_id and not ID.fullmatch(message.place.place_id):
        raise InvalidEventError("place.place_id must be an id ([A-Za-z0-9._:-])")
    check_home(message.place)


def check_request(message: ConsultationRequested) -> None:
    """What a request needs to be matched; InvalidEventError says what is missing."""
    if not is_pseudonym(message.patient_pseudonym):
        raise InvalidEventError("patient_pseudonym must be a platform pseudonym (psn-...)")
    if message.territory not in TERRITORY_CODES:
        raise InvalidEventError("territory must be a programme département: 52, 54 or 55")
    if message.urgency not in URGENCIES:
        raise InvalidEventError("urgency must be immediate, same day, within 7 days or routine")
    if message.profession not in Profession.values():
        raise InvalidEventError("profession is not one this platform knows")
    if message.modality not in Modality.values():
        raise InvalidEventError("modality is not one this platform knows")
    if not message.requested_by:
        raise InvalidEventError("request does not say who asked (requested_by)")
    if not CODE.fullmatch(message.reason_code):
        raise InvalidEventError("reason_code must be a code ([a-z0-9._-]), never free text")
    if message.specialty and not CODE.fullmatch(message.specialty):
        raise InvalidEventError("specialty must be a code ([a-z0-9._-])")
    if message.place.commune and not COMMUNE.fullmatch(message.place.commune):
        raise InvalidEventError("place.commune must be an INSEE commune code")
    if message.profession == Profession.PROFESSION_SPECIALIST and not message.specialty:
        raise InvalidEventError("a request for a specialist names the specialty")
    for name in ("requester_id", "cause_id", "referral_booking_id"):
        value = getattr(message, name)
        if value and not ID.fullmatch(value):
            raise InvalidEventError(f"{name} must be an id ([A-Za-z0-9._:-]), never free text")
    if message.place.place_id and not ID.fullmatch(message.place.place_id):
        raise InvalidEventError("place.place_id must be an id ([A-Za-z0-9._:-])")
    check_home(message.place)


def check_requested_at(message: ConsultationRequested, now: datetime) -> None:
    """A request dated in the future would never be flagged; one dated long ago would jump
    the line: both are refused."""
    at = message.requested_at.ToDatetime(tzinfo=UTC)
    if at > now + CLOCK_SKEW:
        raise InvalidEventError("requested_at is in the future")
    if at < now - OLDEST_REQUEST:
        raise InvalidEventError(f"requested_at is more than {OLDEST_REQUEST.days} days ago")


def check_referral(agenda: Agenda, message: ConsultationRequested) -> None:
    """A referral names a completed consultation of this patient that referred them to
    this specialty, not used by another request yet."""
    if not message.referral_booking_id:
        return
    referral = agenda.booking(message.referral_booking_id)
    if (
        referral is None
        or referral.patient != message.patient_pseudonym
        or referral.status != COMPLETED
        or REFERRAL_TO_SPECIALIST not in referral.follow_ups
        or referral.referral_specialty != message.specialty
    ):
        raise InvalidEventError(
            "referral_booking_id is not a completed consultation that referred this patient "
            "to this specialty"
        )
    if referral.referral_used_by and referral.referral_used_by != message.request_id:
        raise InvalidEventError("this referral was already used by another request")


def practitioner_state(message: PractitionerRegistered) -> Practitioner:
    return Practitioner(
        practitioner_id=message.practitioner_id,
        profession=message.profession,
        specialty=message.specialty,
        care_line=message.care_line,
        modalities=list(message.modalities),
        place=location(message.place),
        active=message.active,
    )


def with_place(message: MessageWithPlace, place: Place) -> MessageWithPlace:
    """A copy of a request or practitioner with this place."""
    copy = type(message)()
    copy.CopyFrom(message)
    copy.place.CopyFrom(place)
    return copy


def register_practitioner(
    agenda: Agenda, message: PractitionerRegistered, now: datetime, event_id: str = ""
) -> Result:
    check_practitioner(message)
    message = with_place(message, place_from_directory(agenda, message.place))
    agenda.save_practitioner(practitioner_state(message))
    agenda.set_in_force("practitioner", message.practitioner_id, event_id)
    facts = serve_waiting(agenda, now, practitioner_id=message.practitioner_id)
    return Result(facts, "registered")


def publish_availability(
    agenda: Agenda, message: AvailabilityPublished, now: datetime, event_id: str = ""
) -> Result:
    practitioner = agenda.practitioner(message.practitioner_id)
    if practitioner is None:
        raise InvalidEventError("practitioner is not registered in this territory")
    new: list[SlotState] = []
    # Every slot checked before any is saved: a bad one refuses the whole publication.
    for slot in message.slots:
        if not slot.slot_id or not slot.HasField("start") or slot.duration.ToSeconds() <= 0:
            raise InvalidEventError("every slot needs an id, a start and a duration")
        if slot.practitioner_id and slot.practitioner_id != message.practitioner_id:
            raise InvalidEventError("a slot belongs to the practitioner publishing it")
        existing = agenda.slot(slot.slot_id)
        if existing is not None:
            if existing.practitioner_id != message.practitioner_id or existing.start != (
                slot.start.ToDatetime(tzinfo=UTC)
            ):
                raise InvalidEventError(f"slot id {slot.slot_id!r} is already another slot")
            continue  # published again: the slot, and any booking in it, stand
        new.append(
            SlotState(
                slot_id=slot.slot_id,
                practitioner_id=message.practitioner_id,
                start=slot.start.ToDatetime(tzinfo=UTC),
                duration_s=slot.duration.ToSeconds(),
                modalities=[int(m) for m in slot.modalities] or practitioner.modalities,
            )
        )
    check_no_overlap(agenda.practitioner_slots(message.practitioner_id), new)
    for state in new:
        agenda.save_slot(state)
        agenda.set_in_force("slot", state.slot_id, event_id)
    facts = serve_waiting(agenda, now, slot_ids={s.slot_id for s in new})
    return Result(facts, f"slots_added_{min(len(new), 1)}")


def check_no_overlap(existing: list[SlotState], new: list[SlotState]) -> None:
    """A practitioner cannot be in two consultations at once: new slots may not overlap
    each other or the practitioner's slots already published."""
    ordered = sorted([*existing, *new], key=lambda s: s.start)
    for before, after in itertools.pairwise(ordered):
        if after.start < before.start + timedelta(seconds=before.duration_s):
            raise InvalidEventError(
                f"slot at {after.start.isoformat()} overlaps the practitioner's slot at "
                f"{before.start.isoformat()}"
            )


def request_consultation(
    agenda: Agenda, message: ConsultationRequested, now: datetime, experiment: str = ""
) -> Result:
    if agenda.request(message.request_id) is not None:
        return Result(outcome="duplicate")
    check_request(message)
    check_requested_at(message, now)
    check_referral(agenda, message)
    message = with_place(message, request_place(agenda, message))
    if message.referral_booking_id:
        referral = agenda.booking(message.referral_booking_id)
        assert referral is not None
        agenda.save_booking(referral.model_copy(update={"referral_used_by": message.request_id}))
    state = RequestState(
        request_id=message.request_id,
        patient=message.patient_pseudonym,
        urgency=message.urgency,
        profession=message.profession,
        specialty=message.specialty,
        modality=message.modality,
        place=location(message.place),
        referral_booking_id=message.referral_booking_id,
        requested_at=message.requested_at.ToDatetime(tzinfo=UTC),
        received_at=now,
        message=json_format.MessageToDict(message, preserving_proto_field_name=True),
        experiment=experiment,
    )
    agenda.save_request(state)
    result = Result(serve_waiting(agenda, now, request=state), "received")
    result.observations.append(Observation("received", message.urgency))
    return result


def serve_waiting(
    agenda: Agenda,
    now: datetime,
    *,
    request: RequestState | None = None,
    slot_ids: set[str] | None = None,
    practitioner_id: str = "",
) -> list[Fact]:
    """Give free slots to the requests in line, most urgent and earliest first.

    Every request in line already found no suitable free slot. So only what changed can
    make a match: a new `request` is matched alone against the free slots of its need;
    new or freed slots (`slot_ids`, a `practitioner_id`'s) are offered to the line of
    their need. Only candidates are read (services.access.indexes), never the territory.
    """
    if request is not None and slot_ids is None and not practitioner_id:
        match = earliest_match(agenda, request, now)
        return [] if match is None else [_book(agenda, request, match, now)]
    if slot_ids is not None:
        found = [agenda.slot(slot_id) for slot_id in sorted(slot_ids)]
        free = [s for s in found if s is not None]
    else:
        free = agenda.practitioner_slots(practitioner_id)
    free = [s for s in free if s.free and s.start >= now]
    if practitioner_id:
        free = [s for s in free if s.practitioner_id == practitioner_id]
    practitioners: dict[str, Practitioner] = {}
    by_need: dict[tuple[int, str], list[SlotState]] = {}
    for slot in free:
        p = agenda.known_practitioner(slot.practitioner_id)
        if p is not None:
            practitioners[p.practitioner_id] = p
            by_need.setdefault(need_of_practitioner(p), []).append(slot)
    facts = []
    for waiting in [request] if request is not None else agenda.line(by_need):
        candidates = by_need.get(need_of_request(waiting), [])
        match = best_slot(waiting, practitioners, candidates, now)
        if match is None:
            continue
        facts.append(_book(agenda, waiting, match, now))
        candidates.remove(match.slot)
    return facts


# Free slots started this long ago leave the index (a little slack for clocks that differ
# between instances: a slot started is never suitable again).
STARTED_LONG_AGO = timedelta(hours=1)
# Starts are compared as epoch seconds in the index: a hair wider, the rules decide.
SLACK_S = 0.001


def earliest_match(agenda: Agenda, request: RequestState, now: datetime) -> Match | None:
    """best_slot over the free slots of the request's need, read in order of start, and
    no further once a first-line match is found (no later slot can come before it)."""
    need = need_of_request(request)
    index = agenda.indexes.free_slots(need)
    stale_before = (now - STARTED_LONG_AGO).timestamp()
    stale = [slot_id for slot_id, (start, _) in index.items() if start < stale_before]
    if stale:
        agenda.indexes.drop_started(need, stale)
    reach = now + HORIZON.get(request.urgency, HORIZON[ROUTINE])
    low, high = now.timestamp() - SLACK_S, reach.timestamp() + SLACK_S
    declined = set(request.declined_slots)
    refs = sorted(
        (start, slot_id)
        for slot_id, (start, _) in index.items()
        if low <= start <= high and slot_id not in declined
    )
    practitioners: dict[str, Practitioner] = {}
    best: Match | None = None
    for start, group in itertools.groupby(refs, key=lambda ref: ref[0]):
        first_line = best is not None and best.practitioner.care_line != SECOND_LINE
        if first_line and best is not None and start > best.slot.start.timestamp():
            break
        slots = [s for s in (agenda.slot(slot_id) for _, slot_id in group) if s is not None]
        for slot in slots:
            p = agenda.known_practitioner(slot.practitioner_id)
            if p is not None:
                practitioners[p.practitioner_id] = p
        best = best_slot(request, practitioners, [*slots, *([best.slot] if best else [])], now)
    return best


def _book(
    agenda: Agenda, request: RequestState, match: Match, now: datetime, rescheduled_from: str = ""
) -> Fact:
    booking = BookingState(
        # Counted per request: a request moved back to a slot it held gets a new booking.
        booking_id=derived_id(request.request_id, match.slot.slot_id, str(request.bookings_made)),
        request_id=request.request_id,
        patient=request.patient,
        practitioner_id=match.practitioner.practitioner_id,
        slot_id=match.slot.slot_id,
        start=match.slot.start,
        modality=match.modality,
        booked_at=now,
    )
    slot = match.slot.model_copy(update={"booking_id": booking.booking_id})
    agenda.save_slot(slot)
    agenda.save_booking(booking)
    agenda.save_request(
        request.model_copy(
            update={
                "status": BOOKED,
                "booking_id": booking.booking_id,
                "bookings_made": request.bookings_made + 1,
            }
        )
    )
    booked = SlotBooked(
        booking_id=booking.booking_id,
        territory=agenda.territory,
        request_id=request.request_id,
        patient_pseudonym=request.patient,
        practitioner_id=booking.practitioner_id,
        slot_id=slot.slot_id,
        start=timestamp(slot.start),
        modality=match.modality,  # type: ignore[arg-type]
        distance_km=round(match.distance_km, 1),
        booked_at=timestamp(now),
        rescheduled_from=rescheduled_from,
    )
    booked.waited.FromTimedelta(max(now - request.requested_at, timedelta(0)))
    return Fact(SLOT_BOOKED, booked, booking.booking_id)


def _status_changed(
    agenda: Agenda,
    booking: BookingState,
    actor: str,
    now: datetime,
    *,
    reason: str = "",
    since_request: timedelta | None = None,
) -> Fact:
    changed = ConsultationStatusChanged(
        booking_id=booking.booking_id,
        territory=agenda.territory,
        request_id=booking.request_id,
        patient_pseudonym=booking.patient,
        practitioner_id=booking.practitioner_id,
        status=booking.status,  # type: ignore[arg-type]
        follow_ups=booking.follow_ups,  # type: ignore[arg-type]
        referral_specialty=booking.referral_specialty,
        reason_code=reason,
        changed_by=actor,
        changed_at=timestamp(now),
    )
    if since_request is not None:
        changed.request_to_consultation.FromTimedelta(since_request)
    event_id = derived_id(booking.booking_id, "status", str(booking.status))
    return Fact(CONSULTATION_STATUS_CHANGED, changed, event_id)


def apply_action(
    agenda: Agenda,
    action: BookingActionRequested,
    now: datetime,
    *,
    delays: dict[int, timedelta],
    coordinators: dict[str, str],
) -> Result:
    """Apply a booking action once; a refused one is recorded with its reason."""
    if agenda.action_outcome(action.action_id) is not None:
        return Result(outcome="duplicate")
    if action.action == BookingAction.BOOKING_ACTION_DELAY_DUE:
        return _delay_due(agenda, action, now, delays, coordinators)
    handlers = {
        BookingAction.BOOKING_ACTION_BOOK_SLOT: _book_slot,
        BookingAction.BOOKING_ACTION_CONFIRM: _confirm,
        BookingAction.BOOKING_ACTION_RESCHEDULE: _reschedule,
        BookingAction.BOOKING_ACTION_CANCEL: _cancel,
        BookingAction.BOOKING_ACTION_RECORD_OUTCOME: _record_outcome,
        BookingAction.BOOKING_ACTION_WITHDRAW: _withdraw,
    }
    handler = handlers.get(action.action)
    if handler is None:
        raise InvalidEventError(
            "booking action must be book, confirm, reschedule, cancel, outcome or withdraw"
        )
    try:
        result = handler(agenda, action, now)
    except ActionRefused as refused:
        agenda.record_action(
            action.action_id, {"ok": False, "code": refused.code, "message": str(refused)}
        )
        return Result(outcome="refused")
    booking_id = result.booking_id or action.booking_id
    agenda.record_action(action.action_id, {"ok": True, "booking_id": booking_id})
    return result


def _waiting_request(agenda: Agenda, request_id: str) -> RequestState:
    request = agenda.request(request_id)
    if request is None:
        raise ActionRefused("NOT_FOUND", "no such request in this territory")
    if request.status != WAITING:
        raise ActionRefused("FAILED_PRECONDITION", "the request is not waiting for a slot")
    return request


def _free_slot_for(agenda: Agenda, request: RequestState, slot_id: str, now: datetime) -> Match:
    slot = agenda.slot(slot_id)
    if slot is None:
        raise ActionRefused("NOT_FOUND", "no such slot in this territory")
    if not slot.free:
        raise ActionRefused("FAILED_PRECONDITION", "the slot is already booked")
    practitioner = agenda.practitioner(slot.practitioner_id)
    modality = suitable(request, practitioner, slot, now) if practitioner else None
    if practitioner is None or modality is None:
        raise ActionRefused(
            "FAILED_PRECONDITION",
            "the slot does not suit the request (profession, specialty, modality, line or time)",
        )
    return Match(slot, practitioner, modality, distance_km(request.place, practitioner.place))


def _active_booking(agenda: Agenda, booking_id: str) -> BookingState:
    booking = agenda.booking(booking_id)
    if booking is None:
        raise ActionRefused("NOT_FOUND", "no such booking in this territory")
    if not booking.active:
        raise ActionRefused("FAILED_PRECONDITION", "the booking is cancelled or over")
    return booking


def _book_slot(agenda: Agenda, action: BookingActionRequested, now: datetime) -> Result:
    held = _booked_on(agenda, action.request_id, action.slot_id)
    if held is not None:  # asked again (a lost answer): the booking it made
        return Result(outcome="already_booked", booking_id=held.booking_id)
    request = _waiting_request(agenda, action.request_id)
    match = _free_slot_for(agenda, request, action.slot_id, now)
    fact = _book(agenda, request, match, now)
    return Result([fact], "booked", booking_id=fact.event_id)


def _confirm(agenda: Agenda, action: BookingActionRequested, now: datetime) -> Result:
    booking = _active_booking(agenda, action.booking_id)
    if booking.status == CONFIRMED:
        return Result(outcome="already_confirmed")
    if booking.status != SCHEDULED:
        raise ActionRefused("FAILED_PRECONDITION", "the consultation has started")
    booking.status = CONFIRMED
    agenda.save_booking(booking)
    return Result([_status_changed(agenda, booking, action.actor_id, now)], "confirmed")


def _release(agenda: Agenda, booking: BookingState, reason: str, actor: str, now: datetime) -> Fact:
    booking.status = CANCELLED
    agenda.save_booking(booking)
    slot = agenda.slot(booking.slot_id)
    if slot is not None and slot.booking_id == booking.booking_id:
        agenda.save_slot(slot.model_copy(update={"booking_id": ""}))
    return _status_changed(agenda, booking, actor, now, reason=reason)


def _booked_on(agenda: Agenda, request_id: str, slot_id: str) -> BookingState | None:
    """The request's active booking in this slot, if it holds one."""
    request = agenda.request(request_id)
    booking = agenda.booking(request.booking_id) if request and request.booking_id else None
    if booking is not None and booking.active and booking.slot_id == slot_id:
        return booking
    return None


def _reschedule(agenda: Agenda, action: BookingActionRequested, now: datetime) -> Result:
    before = agenda.booking(action.booking_id)
    if before is not None and before.moved_to:
        held = agenda.booking(before.moved_to)
        if held is not None and held.active and held.slot_id == action.slot_id:
            # Asked again (a lost answer): the booking it moved to.
            return Result(outcome="already_rescheduled", booking_id=held.booking_id)
    booking = _active_booking(agenda, action.booking_id)
    if booking.status == STARTED:
        raise ActionRefused("FAILED_PRECONDITION", "the consultation has started")
    request = agenda.request(booking.request_id)
    assert request is not None
    match = _free_slot_for(agenda, request, action.slot_id, now)
    facts = [_release(agenda, booking, "booking.rescheduled", action.actor_id, now)]
    request = request.model_copy(update={"status": WAITING, "booking_id": ""})
    moved = _book(agenda, request, match, now, rescheduled_from=booking.booking_id)
    gone = agenda.booking(booking.booking_id)
    assert gone is not None
    agenda.save_booking(gone.model_copy(update={"moved_to": moved.event_id}))
    facts.append(moved)
    # The slot given up goes to the next in line.
    facts.extend(serve_waiting(agenda, now, slot_ids={booking.slot_id}))
    return Result(facts, "rescheduled", booking_id=moved.event_id)


def _cancel(agenda: Agenda, action: BookingActionRequested, now: datetime) -> Result:
    cancelled = agenda.booking(action.booking_id)
    if cancelled is not None and cancelled.status == CANCELLED and not cancelled.moved_to:
        return Result(outcome="already_cancelled")  # asked again: the cancelled booking
    booking = _active_booking(agenda, action.booking_id)
    if booking.status == STARTED:
        raise ActionRefused("FAILED_PRECONDITION", "the consultation has started")
    reason = action.reason_code or "booking.cancelled"
    if not CODE.fullmatch(reason):
        raise ActionRefused("INVALID_ARGUMENT", "reason_code must be a code ([a-z0-9._-])")
    facts = [_release(agenda, booking, reason, action.actor_id, now)]
    request = agenda.request(booking.request_id)
    assert request is not None
    if action.rebook:
        declined = [*request.declined_slots, booking.slot_id]
        request = request.model_copy(
            update={"status": WAITING, "booking_id": "", "declined_slots": declined}
        )
    else:
        request = request.model_copy(update={"status": REQUEST_CANCELLED})
    agenda.save_request(request)
    # The freed slot goes to the next in line (the request itself, if rebooked, excepted);
    # then a rebooked request looks for another free slot.
    facts.extend(serve_waiting(agenda, now, slot_ids={booking.slot_id}))
    if action.rebook:
        again = agenda.request(request.request_id)
        if again is not None and again.status == WAITING:
            facts.extend(serve_waiting(agenda, now, request=again))
    what = "rebooked" if action.rebook else "cancelled"
    return Result(facts, what, [Observation(what, request.urgency)])


def _record_outcome(agenda: Agenda, action: BookingActionRequested, now: datetime) -> Result:
    recorded = agenda.booking(action.booking_id)
    if (
        recorded is not None
        and action.status in (STARTED, COMPLETED, NO_SHOW)
        and recorded.status == action.status
        and recorded.follow_ups == list(action.follow_ups)
        and recorded.referral_specialty == action.referral_specialty
    ):
        return Result(outcome="already_recorded")  # asked again: the outcome stands
    booking = _active_booking(agenda, action.booking_id)
    status = action.status
    if status not in (STARTED, COMPLETED, NO_SHOW):
        raise ActionRefused("INVALID_ARGUMENT", "outcome must be STARTED, COMPLETED or NO_SHOW")
    if booking.status == STARTED and status != COMPLETED:
        raise ActionRefused("FAILED_PRECONDITION", "a started consultation can only be completed")
    if now < booking.start - OUTCOME_TOLERANCE:
        raise ActionRefused("FAILED_PRECONDITION", "the consultation's slot has not started yet")
    if action.follow_ups and status != COMPLETED:
        raise ActionRefused("INVALID_ARGUMENT", "follow-ups come with a completed consultation")
    if REFERRAL_TO_SPECIALIST in action.follow_ups and not CODE.fullmatch(
        action.referral_specialty
    ):
        raise ActionRefused("INVALID_ARGUMENT", "a referral names the specialty (a code)")
    request = agenda.request(booking.request_id)
    assert request is not None
    first_start = booking.status != STARTED and status in (STARTED, COMPLETED)
    booking.status = status
    booking.follow_ups = list(action.follow_ups)
    booking.referral_specialty = action.referral_specialty
    agenda.save_booking(booking)
    observations = []
    since = None
    if first_start:
        since = max(now - request.requested_at, timedelta(0))
        observations.append(Observation("consulted", request.urgency, since.total_seconds()))
    if status in (COMPLETED, NO_SHOW):
        agenda.save_request(request.model_copy(update={"status": DONE}))
        observations.append(
            Observation("completed" if status == COMPLETED else "no_show", request.urgency)
        )
    fact = _status_changed(agenda, booking, action.actor_id, now, since_request=since)
    return Result([fact], "outcome", observations)


def _withdraw(agenda: Agenda, action: BookingActionRequested, now: datetime) -> Result:
    """A waiting request leaves the line (its place goes to the next); one withdrawn
    already for the same reason answers as it did."""
    if action.withdrawal_reason not in WithdrawalReason.values() or not action.withdrawal_reason:
        raise ActionRefused(
            "INVALID_ARGUMENT",
            "reason must be PATIENT_DECLINED, COORDINATOR_DECISION or NO_LONGER_NEEDED",
        )
    if action.reason_code and not CODE.fullmatch(action.reason_code):
        raise ActionRefused("INVALID_ARGUMENT", "reason_code must be a code ([a-z0-9._-])")
    request = agenda.request(action.request_id)
    if request is None:
        raise ActionRefused("NOT_FOUND", "no such request in this territory")
    if request.status == WITHDRAWN:
        if request.withdrawal_reason != action.withdrawal_reason:
            raise ActionRefused(
                "FAILED_PRECONDITION", "the request was withdrawn for another reason"
            )
        return Result(outcome="already_withdrawn")
    if request.status == BOOKED:
        raise ActionRefused(
            "FAILED_PRECONDITION", "the request has a booking: cancel it with CancelBooking"
        )
    if request.status != WAITING:
        raise ActionRefused("FAILED_PRECONDITION", "the request is no longer waiting")
    agenda.save_request(
        request.model_copy(
            update={"status": WITHDRAWN, "withdrawal_reason": action.withdrawal_reason}
        )
    )
    withdrawn = RequestWithdrawn(
        request_id=request.request_id,
        territory=agenda.territory,
        patient_pseudonym=request.patient,
        urgency=request.urgency,  # type: ignore[arg-type]
        reason=action.withdrawal_reason,
        reason_code=action.reason_code,
        withdrawn_by=action.actor_id,
        withdrawn_at=timestamp(now),
    )
    withdrawn.waited.FromTimedelta(max(now - request.requested_at, timedelta(0)))
    fact = Fact(REQUEST_WITHDRAWN, withdrawn, derived_id(request.request_id, "withdrawn"))
    return Result(
        [fact], "withdrawn", [Observation("withdrawn", request.urgency, _waited(request, now))]
    )


def _waited(request: RequestState, now: datetime) -> float:
    return max((now - request.requested_at).total_seconds(), 0.0)


def _delay_due(
    agenda: Agenda,
    action: BookingActionRequested,
    now: datetime,
    delays: dict[int, timedelta],
    coordinators: dict[str, str],
) -> Result:
    request = agenda.request(action.request_id)
    if (
        request is None
        or request.status != WAITING
        or request.flagged_at is not None
        or booking_deadline(request, delays) > now
    ):
        return Result(outcome="not_due")  # not recorded: a later tick may still apply
    agenda.save_request(request.model_copy(update={"flagged_at": now}))
    agenda.record_action(action.action_id, {"ok": True})
    flagged = RequestFlagged(
        request_id=request.request_id,
        territory=agenda.territory,
        patient_pseudonym=request.patient,
        urgency=request.urgency,  # type: ignore[arg-type]
        coordinator_id=coordinators.get(agenda.territory, f"coordination-{agenda.territory}"),
        flagged_at=timestamp(now),
    )
    flagged.waited.FromTimedelta(now - request.requested_at)
    fact = Fact(REQUEST_FLAGGED, flagged, derived_id(request.request_id, "flagged"))
    return Result(
        [fact], "flagged", [Observation("flagged", request.urgency, _waited(request, now))]
    )


def due_delays(
    agenda: Agenda, now: datetime, delays: dict[int, timedelta]
) -> list[BookingActionRequested]:
    """Requests in line past their booking delay and not flagged yet."""
    return [
        delay_due(agenda.territory, request.request_id, now)
        for request in agenda.waiting()
        if request.flagged_at is None and booking_deadline(request, delays) <= now
    ]


def delay_due(territory: str, request_id: str, now: datetime) -> BookingActionRequested:
    """The action that flags a request past its booking delay; its id derives from the
    request, so it is applied once however often the delay is found due."""
    return BookingActionRequested(
        action_id=derived_id(request_id, "delay"),
        territory=territory,
        action=BookingAction.BOOKING_ACTION_DELAY_DUE,
        request_id=request_id,
        requested_at=timestamp(now),
    )
