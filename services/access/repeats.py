"""Directory writes already in force. A call asked again after a lost answer (the same
practitioner, place or slots) is answered with the event that set them, and nothing is
published again: same request, same answer."""

from __future__ import annotations

from datetime import UTC

from emeuse.access.v1.access_events_pb2 import (
    AvailabilityPublished,
    PlaceRegistered,
    PractitionerRegistered,
)
from services.access.scheduling import Agenda, location, practitioner_state


def practitioner_in_force(agenda: Agenda, message: PractitionerRegistered) -> str:
    """The event that registered this practitioner as asked (place filled in); "" if the
    directory holds something else."""
    if agenda.practitioner(message.practitioner_id) != practitioner_state(message):
        return ""
    return agenda.in_force("practitioner", message.practitioner_id)


def place_in_force(agenda: Agenda, registration: PlaceRegistered) -> str:
    """The event that registered this place as asked; "" otherwise."""
    place = registration.place
    if agenda.place(place.place_id) != location(place):
        return ""
    return agenda.in_force("place", place.place_id)


def availability_in_force(agenda: Agenda, availability: AvailabilityPublished) -> str:
    """The one event that published every slot asked (a slot is its practitioner and
    start, as the scheduler counts them); "" if any is new or came from elsewhere."""
    events = set()
    for slot in availability.slots:
        known = agenda.slot(slot.slot_id)
        if (
            known is None
            or known.practitioner_id != availability.practitioner_id
            or known.start != slot.start.ToDatetime(tzinfo=UTC)
        ):
            return ""
        events.add(agenda.in_force("slot", slot.slot_id))
    return events.pop() if len(events) == 1 else ""
