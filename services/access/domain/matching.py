"""Matching a request to the earliest suitable slot of its territory.

Suitable: the profession and specialty asked for, a modality the practitioner, the slot
and the patient's place all offer, a slot not started yet, and second-line care only on
a referral. Among suitable slots: first line before second line, then the earliest, then
the nearest (so a practitioner who can also see the patient in person is preferred).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.access.domain.agenda import (
    FIRST_LINE,
    GP,
    HORIZON,
    NURSE_ASSISTED,
    PHONE,
    ROUTINE,
    SECOND_LINE,
    VIDEO,
    Location,
    Practitioner,
    RequestState,
    SlotState,
)

# When a request accepts any modality: video first, then nurse-assisted, then phone.
MODALITY_PREFERENCE = (VIDEO, NURSE_ASSISTED, PHONE)
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class Match:
    slot: SlotState
    practitioner: Practitioner
    modality: int
    distance_km: float


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance; 0 when either place is not located."""
    if not (a.located and b.located):
        return 0.0
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat, dlon = lat2 - lat1, math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def modality_for(request: RequestState, practitioner: Practitioner, slot: SlotState) -> int | None:
    """The modality the consultation would use, or None when none fits."""
    offered = set(practitioner.modalities) & set(slot.modalities)
    if request.place.modalities:
        offered &= set(request.place.modalities)
    if request.modality:
        return request.modality if request.modality in offered else None
    return next((m for m in MODALITY_PREFERENCE if m in offered), None)


def suitable(
    request: RequestState, practitioner: Practitioner, slot: SlotState, now: datetime
) -> int | None:
    """The modality if the slot suits the request, else None."""
    if not slot.free or slot.start < now or not practitioner.active:
        return None
    if slot.start > now + HORIZON.get(request.urgency, HORIZON[ROUTINE]):
        return None  # too far for the urgency
    if slot.slot_id in request.declined_slots:
        return None
    if practitioner.profession != (request.profession or GP):
        return None
    if practitioner.specialty != request.specialty:
        return None
    if practitioner.care_line == SECOND_LINE and not request.referral_booking_id:
        return None
    return modality_for(request, practitioner, slot)


def best_slot(
    request: RequestState,
    practitioners: dict[str, Practitioner],
    slots: Iterable[SlotState],
    now: datetime,
) -> Match | None:
    best: tuple[tuple[int, datetime, float, str], Match] | None = None
    for slot in slots:
        practitioner = practitioners.get(slot.practitioner_id)
        if practitioner is None:
            continue
        modality = suitable(request, practitioner, slot, now)
        if modality is None:
            continue
        km = distance_km(request.place, practitioner.place)
        line = FIRST_LINE if practitioner.care_line != SECOND_LINE else SECOND_LINE
        key = (line, slot.start, round(km, 1), slot.slot_id)
        if best is None or key < best[0]:
            best = (key, Match(slot, practitioner, modality, km))
    return best[1] if best else None
