"""Unmet need: a request flagged for waiting past its delay, told by what was asked.

A flag carries the urgency only; the profession, modality and commune are on the request.
Each request waiting is kept (keyed "<territory>|<request id>", on the territory's
partition like every access event: "agenda-<territory>" hashed) until it is booked or
flagged, then forgotten.
"""

from __future__ import annotations

from typing import Any

from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    Modality,
    Profession,
    RequestFlagged,
    SlotBooked,
)
from emeuse.kernel.tx import Tx
from emeuse.registry import AGENDA_PARTITION
from services.evaluation.contributions import label

WAITING = "territory_request_waiting"


def waiting_key(territory: str, request_id: str) -> str:
    return f"{territory}|{request_id}"


def territory_of(key: str) -> str:
    return key.split("|", 1)[0]


def agenda_partition(key: str) -> str:
    """What picks a key's partition: its territory as access events are partitioned
    (emeuse.registry.AGENDA_PARTITION), so a request's events and its key meet."""
    return AGENDA_PARTITION.format(territory_of(key))


def what_was_asked(request: ConsultationRequested) -> dict[str, str]:
    return {
        "profession": label(Profession, request.profession, "PROFESSION_"),
        # Unspecified: any modality the place offers.
        "modality": label(Modality, request.modality, "MODALITY_").replace("unspecified", "any"),
        "commune": request.place.commune or "unknown",
    }


def breakdowns_of(asked: dict[str, str] | None) -> tuple[str, ...]:
    """The flag's breakdowns besides urgency; none for a request never seen (sent before
    the service's topics were read, or past their retention)."""
    if not asked:
        return ()
    return tuple(f"{name}={asked[name]}" for name in ("profession", "modality", "commune"))


def follow(message: Any, tx: Tx) -> dict[str, str] | None:
    """Keep or forget the request the event concerns; for a flag, what was asked."""
    if isinstance(message, ConsultationRequested):
        tx.put(WAITING, waiting_key(message.territory, message.request_id), what_was_asked(message))
    elif isinstance(message, SlotBooked) and not message.rescheduled_from:
        tx.delete(WAITING, waiting_key(message.territory, message.request_id))
    elif isinstance(message, RequestFlagged):
        key = waiting_key(message.territory, message.request_id)
        asked: dict[str, str] | None = tx.get(WAITING, key)
        tx.delete(WAITING, key)
        return asked
    return None
