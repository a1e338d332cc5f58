"""Unmet need: a request flagged for waiting past its delay, told by what was asked.

A flag carries the urgency only; the profession, modality and commune are on the request.
Each request waiting is kept (keyed "<territory>|<request id>", on the territory's
partition like every access event: "agenda-<territory>" hashed) until it is booked or
flagged, then forgotten.

The request and its flag are on two topics, and the kernel orders records within a topic
only: reading every topic from the start (a rebuild), a flag may come before its request.
Such a flag is counted by urgency at once and remembered under the same key with the
cells it was counted in; its request then adds what it asked to those cells, so the
figures do not depend on which topic was read first.

A flag counts in the experiment its request was made in, kept with what was asked: access
publishes it there since it keeps the request's experiment, but not for requests it stored
before, whose flags carry access's default experiment. A flag read before its request is
counted in its own experiment and moved to the request's when the request is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emeuse.access.v1.access_events_pb2 import (
    ConsultationRequested,
    Modality,
    Profession,
    RequestFlagged,
    SlotBooked,
    Urgency,
)
from emeuse.kernel.tx import Tx
from emeuse.registry import AGENDA_PARTITION
from services.evaluation.contributions import label

WAITING = "territory_request_waiting"
FLAGGED_UNMET = "access.requests_flagged_unmet"


def waiting_key(territory: str, request_id: str) -> str:
    return f"{territory}|{request_id}"


def territory_of(key: str) -> str:
    return key.split("|", 1)[0]


def agenda_partition(key: str) -> str:
    """What picks a key's partition: its territory as access events are partitioned
    (emeuse.registry.AGENDA_PARTITION), so a request's events and its key meet."""
    return AGENDA_PARTITION.format(territory_of(key))


def what_was_asked(request: ConsultationRequested, experiment: str) -> dict[str, str]:
    return {
        "profession": label(Profession, request.profession, "PROFESSION_"),
        # Unspecified: any modality the place offers.
        "modality": label(Modality, request.modality, "MODALITY_").replace("unspecified", "any"),
        "commune": request.place.commune or "unknown",
        EXPERIMENT: experiment,
    }


def urgency_of(flag: RequestFlagged) -> str:
    return f"urgency={label(Urgency, flag.urgency, 'URGENCY_')}"


def breakdowns_of(asked: dict[str, str] | None) -> tuple[str, ...]:
    """The flag's breakdowns besides urgency; none for a request never seen (sent before
    the service's topics were read, or past their retention)."""
    if not asked:
        return ()
    return tuple(f"{name}={asked[name]}" for name in ("profession", "modality", "commune"))


# Under a request's key, a flag read before the request: the cells it was counted in,
# and its urgency breakdown (absent in flags kept before it was).
FLAGGED_IN = "flagged_in"
URGENCY = "urgency"
# With what a request asked: the experiment it was made in (absent in requests kept before).
EXPERIMENT = "experiment"
# A cell of a flag: (experiment, territory, period).
FlagCell = tuple[str, str, str]


@dataclass
class Followed:
    """What an access event means for unmet need: a flag's breakdowns (`asked`) and the
    experiment of its request (`experiment`, where it counts; empty: the flag's own), or,
    for a request whose flag was read first, the breakdowns to add to that flag's cells
    and, when the request's experiment is another, the flag's urgency (`moved`: the flag
    moves from its cells to the request's experiment)."""

    asked: tuple[str, ...] = ()
    experiment: str = ""
    late: tuple[str, ...] = ()
    flag_cells: list[FlagCell] = field(default_factory=list)
    moved: str = ""


def follow(message: Any, tx: Tx, cells: list[FlagCell]) -> Followed:
    """Keep or forget the request the event concerns; `cells` are the event's own."""
    if isinstance(message, ConsultationRequested):
        key = waiting_key(message.territory, message.request_id)
        kept: dict[str, Any] | None = tx.get(WAITING, key)
        experiment = cells[0][0]  # the request's own
        if kept and FLAGGED_IN in kept:
            tx.delete(WAITING, key)
            late = breakdowns_of(what_was_asked(message, experiment))
            flag_cells = [(c[0], c[1], c[2]) for c in kept[FLAGGED_IN]]
            moved = kept.get(URGENCY, "") if any(c[0] != experiment for c in flag_cells) else ""
            return Followed(experiment=experiment, late=late, flag_cells=flag_cells, moved=moved)
        tx.put(WAITING, key, what_was_asked(message, experiment))
    elif isinstance(message, SlotBooked) and not message.rescheduled_from:
        key = waiting_key(message.territory, message.request_id)
        kept = tx.get(WAITING, key)
        if kept is not None and FLAGGED_IN not in kept:  # a flag read first waits for its request
            tx.delete(WAITING, key)
    elif isinstance(message, RequestFlagged):
        key = waiting_key(message.territory, message.request_id)
        asked: dict[str, Any] | None = tx.get(WAITING, key)
        if asked is None:
            flagged = {FLAGGED_IN: [list(c) for c in cells], URGENCY: urgency_of(message)}
            tx.put(WAITING, key, flagged)
            return Followed()
        if FLAGGED_IN in asked:
            # A copy of a flag read first (sent again): urgency only, as when read after
            # its request's first flag; the first keeps waiting for the request.
            return Followed()
        tx.delete(WAITING, key)
        return Followed(asked=breakdowns_of(asked), experiment=asked.get(EXPERIMENT, ""))
    return Followed()
