"""A territory's agenda indexes, kept in the state beside the rows they index.

Matching a record must cost what its candidates cost, not what the territory holds: a
request only ever matches slots of its need (profession and specialty, see
domain.matching.suitable), and a new slot only requests of that need. So the scheduler
keeps, in the `access_indexes` table, per territory:

- `free:<profession>:<specialty>`: the free slots of that need, slot id -> [start (epoch
  seconds), practitioner id];
- `line:<profession>:<specialty>`: the requests of that need in line, request id ->
  [urgency, requested at (epoch seconds)];
- `slots-of:<practitioner id>`: every slot of a practitioner, slot id -> [start, duration].

They change in the same transaction as the rows (Agenda.save_*), so they are exactly as
committed as the rows. A territory whose rows predate the indexes has them built from its
rows the first time the scheduler touches it (marked `built`), once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.access.domain.agenda import GP, WAITING, Practitioner, RequestState, SlotState

VERSION = 1
Need = tuple[int, str]


def need_of_practitioner(practitioner: Practitioner) -> Need:
    return practitioner.profession, practitioner.specialty


def need_of_request(request: RequestState) -> Need:
    return request.profession or GP, request.specialty


def _need_id(kind: str, need: Need) -> str:
    return f"{kind}:{need[0]}:{need[1]}"


class Indexes:
    """The indexes of one territory, read and written through its agenda (so staged dry
    runs stage their index changes too). Values are never changed in place: a transaction
    may hold the previous one for a rollback, and every reader shares the stored one."""

    def __init__(
        self,
        read: Callable[[str], Any],
        write: Callable[[str, Any], None],
        rows: Callable[[str], list[dict[str, Any]]],
    ) -> None:
        self._read = read
        self._write = write
        self._rows = rows
        self._built = False

    def _ensure_built(self) -> None:
        """Build the indexes from the rows, the first time a territory is touched."""
        if self._built:
            return
        self._built = True
        if (self._read("built") or {}).get("version") == VERSION:
            return
        needs: dict[str, Need] = {}
        for row in self._rows("practitioners"):
            p = Practitioner.model_validate(row)
            needs[p.practitioner_id] = need_of_practitioner(p)
        free: dict[str, dict[str, Any]] = {}
        of: dict[str, dict[str, Any]] = {}
        for row in self._rows("slots"):
            slot = SlotState.model_validate(row)
            of.setdefault(f"slots-of:{slot.practitioner_id}", {})[slot.slot_id] = [
                slot.start.timestamp(),
                slot.duration_s,
            ]
            need = needs.get(slot.practitioner_id)
            if slot.free and need is not None:
                free.setdefault(_need_id("free", need), {})[slot.slot_id] = [
                    slot.start.timestamp(),
                    slot.practitioner_id,
                ]
        line: dict[str, dict[str, Any]] = {}
        for row in self._rows("requests"):
            if row.get("status") == WAITING:
                request = RequestState.model_validate(row)
                line.setdefault(_need_id("line", need_of_request(request)), {})[
                    request.request_id
                ] = [request.urgency, request.requested_at.timestamp()]
        for entity_id, value in (*free.items(), *of.items(), *line.items()):
            self._write(entity_id, value)
        self._write("built", {"version": VERSION})

    def _get(self, entity_id: str) -> Mapping[str, Any]:
        """The index as stored, shared with every reader (state.CODECS): never changed in
        place, only replaced."""
        self._ensure_built()
        return self._read(entity_id) or {}

    def _change(self, entity_id: str, key: str, entry: Any | None) -> None:
        """Set (or, with None, drop) one entry of an index, writing only a change: the copy,
        the size of the index, is made only then (a flag changes no index)."""
        stored = self._get(entity_id)
        if entry is None:
            if key not in stored:
                return
            index = dict(stored)
            del index[key]
        else:
            if stored.get(key) == entry:
                return
            index = {**stored, key: entry}
        self._write(entity_id, index)

    # -- reads ---------------------------------------------------------------------------

    def free_slots(self, need: Need) -> dict[str, tuple[float, str]]:
        """The need's free slots: slot id -> (start, practitioner id)."""
        return {k: (v[0], v[1]) for k, v in self._get(_need_id("free", need)).items()}

    def line(self, need: Need) -> list[str]:
        """Ids of the need's requests in line (any order)."""
        return list(self._get(_need_id("line", need)))

    def slots_of(self, practitioner_id: str) -> list[str]:
        return list(self._get(f"slots-of:{practitioner_id}"))

    # -- changes -------------------------------------------------------------------------

    def slot_saved(self, slot: SlotState, need: Need | None) -> None:
        """A slot as now stored; `need` is its practitioner's (None: not registered)."""
        entry = [slot.start.timestamp(), slot.duration_s]
        self._change(f"slots-of:{slot.practitioner_id}", slot.slot_id, entry)
        if need is not None:
            free = [slot.start.timestamp(), slot.practitioner_id] if slot.free else None
            self._change(_need_id("free", need), slot.slot_id, free)

    def request_saved(self, request: RequestState) -> None:
        entry = (
            [request.urgency, request.requested_at.timestamp()]
            if request.status == WAITING
            else None
        )
        self._change(_need_id("line", need_of_request(request)), request.request_id, entry)

    def practitioner_moved(
        self, practitioner_id: str, before: Need | None, after: Need, free: list[SlotState]
    ) -> None:
        """A practitioner registered, or registered again with another profession or
        specialty: their free slots are the new need's candidates, no longer the old's."""
        if before is not None:
            old = self._get(_need_id("free", before))
            kept = {k: v for k, v in old.items() if v[1] != practitioner_id}
            if kept != old:
                self._write(_need_id("free", before), kept)
        for slot in free:
            self._change(
                _need_id("free", after), slot.slot_id, [slot.start.timestamp(), practitioner_id]
            )

    def drop_started(self, need: Need, stale: list[str]) -> None:
        """Forget free slots long started: they can never be booked again."""
        index = dict(self._get(_need_id("free", need)))
        for slot_id in stale:
            index.pop(slot_id, None)
        self._write(_need_id("free", need), index)
