"""Teleconsultation or télésoin: a first booking told by the profession its request asked.

A booking says how the consultation happens (its modality), not who gives it: a remote
booking is télésoin when its request asked for a nurse, a pharmacist or a
physiotherapist (auxiliaires médicaux and pharmacists, Code de la santé publique
L. 6316-1), teleconsultation otherwise (a doctor or a midwife: the medical professions).
A booking with no remote modality is in person. Each request's profession is kept
(keyed "<territory>|<request id>", on the territory's partition like unmet.py's table)
for every first booking it gets: a request cancelled and rebooked gets another.

The request and its bookings are on two topics: reading every topic from the start (a
rebuild), a booking may come before its request. Such a booking is counted at once
without the breakdown and kept under the request's key with its cells and modality; the
request, when read, adds the breakdown to those cells, so the figures do not depend on
which topic came first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    Profession,
    SlotBooked,
)
from emeuse.kernel.tx import Tx
from services.evaluation.contributions import IN_PERSON, REMOTE_MODALITIES
from services.evaluation.unmet import waiting_key

PROFESSIONS = "territory_request_profession"
BOOKINGS = "access.bookings"
TELESOIN = frozenset(
    {
        Profession.PROFESSION_NURSE,
        Profession.PROFESSION_PHARMACIST,
        Profession.PROFESSION_PHYSIOTHERAPIST,
    }
)
# A cell of a booking: (experiment, territory, period).
BookingCell = tuple[str, str, str]
# Under a request's key: the profession it asked, or the bookings read before it.
PROFESSION = "profession"
BOOKED_FIRST = "booked_first"


def care_of(modality: int, profession: int) -> str:
    if modality not in REMOTE_MODALITIES:
        return IN_PERSON
    return "care=telesoin" if profession in TELESOIN else "care=teleconsultation"


@dataclass
class Care:
    """A first booking's breakdown (`care`; empty: it waits for its request), or, for a
    request whose bookings were read first, each one's cells and breakdown (`late`)."""

    care: str = ""
    late: list[tuple[list[BookingCell], str]] = field(default_factory=list)


def follow(message: Any, tx: Tx, cells: list[BookingCell]) -> Care:
    """Keep the request's profession, or a booking read before it; `cells` are the event's."""
    if isinstance(message, ConsultationRequested):
        key = waiting_key(message.territory, message.request_id)
        kept: dict[str, Any] = tx.get(PROFESSIONS, key) or {}
        if PROFESSION in kept:
            return Care()  # a copy sent again
        tx.put(PROFESSIONS, key, {PROFESSION: message.profession})
        late = [
            (
                [(c[0], c[1], c[2]) for c in booked["cells"]],
                care_of(booked["modality"], message.profession),
            )
            for booked in kept.get(BOOKED_FIRST, [])
        ]
        return Care(late=late)
    if isinstance(message, SlotBooked) and not message.rescheduled_from:
        if message.modality not in REMOTE_MODALITIES:
            return Care(IN_PERSON)
        key = waiting_key(message.territory, message.request_id)
        kept = tx.get(PROFESSIONS, key) or {}
        if PROFESSION in kept:
            return Care(care_of(message.modality, kept[PROFESSION]))
        booked = {"cells": [list(c) for c in cells], "modality": message.modality}
        tx.put(PROFESSIONS, key, {BOOKED_FIRST: [*kept.get(BOOKED_FIRST, []), booked]})
    return Care()
