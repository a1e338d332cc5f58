"""A patient's monitoring state, kept in the `patient_to_state` table.

Latest validated value and recent history per measure (by measurement time), results
waiting for the lab, the patient's alerts, and the ids already seen (to count a reading
or a request once). Bounded, so a patient's state stays small.
"""

from __future__ import annotations

import bisect
import hashlib
from datetime import datetime
from typing import Any

import msgspec
from msgspec.structs import replace

from services.chronic.domain.plan import Member

# Ids of the patient's recent readings (two per reading), to drop a device's re-sent copy.
# The kernel never hands an input twice, so this window is only for real-world duplicates;
# a copy arriving after 100 newer readings of the same patient is not one of those.
RECENT_IDS_KEPT = 200
HISTORY_KEPT = 40
CLOSED_ALERTS_KEPT = 50

WARNING, CRITICAL = "warning", "critical"
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
# Episodes: abnormal values of a measure, its readings not coming, a lab review not coming.
VALUES, GAP, REVIEW = "values", "gap", "review"


class Result(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One reading of a measure, in its canonical unit."""

    reading_id: str = ""
    value: float
    unit: str
    measured_at: datetime


class PendingResult(Result):
    """A point-of-care result waiting for the medical lab's review."""

    loinc_code: str
    received_at: datetime
    # Whether its review-overdue alert was raised (once).
    overdue_alerted: bool = False


class Correction(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """A result its producer corrected: the value it replaced (None when that one was never
    received) and the corrected one, both in the measure's canonical unit."""

    reading_id: str
    previous_value: float | None = None
    corrected_value: float
    unit: str


class AlertState(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    alert_id: str
    episode: str
    loinc_code: str
    severity: str
    rule: str
    reason: str
    territory: str
    status: str = OPEN
    raised_at: datetime
    reading_ids: list[str] = msgspec.field(default_factory=list)
    # Members in escalation order; chain[: step + 1] have been notified.
    chain: list[Member]
    step: int = 0
    acknowledge_within_s: float
    next_escalation_at: datetime | None = None
    acknowledged_by: str = ""
    acknowledged_at: datetime | None = None
    resolution: int = 0
    resolved_by: str = ""
    resolved_at: datetime | None = None
    # Latest measurement time in the episode; a later in-range value ends the run, and
    # the next abnormal value then opens a new alert (this one stays open until resolved).
    last_measured_at: datetime | None = None
    run_ended: bool = False
    # The latest correction of a result in the episode, shown to the care team.
    correction: Correction | None = None

    @property
    def is_open(self) -> bool:
        return self.status != RESOLVED

    @property
    def notified(self) -> list[Member]:
        return self.chain[: self.step + 1]


def _measured_at(result: Result) -> datetime:
    return result.measured_at


# gc=False: states hold no reference cycles, and thousands of them stay cached, so the
# garbage collector need not walk them (its full passes paused the loop for 100s of ms).
class PatientState(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    latest: dict[str, Result] = msgspec.field(default_factory=dict)
    history: dict[str, list[Result]] = msgspec.field(default_factory=dict)
    pending_review: dict[str, PendingResult] = msgspec.field(default_factory=dict)
    last_measured_at: dict[str, datetime] = msgspec.field(default_factory=dict)
    alerts: dict[str, AlertState] = msgspec.field(default_factory=dict)
    # When a measure's gap episode last closed: the next gap counts from there.
    gap_closed_at: dict[str, datetime] = msgspec.field(default_factory=dict)
    alerts_raised: int = 0
    last_alert_id: str = ""
    # The ids seen, oldest first, as 8-byte digests end to end (RECENT_IDS_KEPT at most):
    # one bytes object to store and copy, not 200 strings (a false match among 200 digests
    # of 64 bits: about one reading in 10^17).
    seen: bytes = b""

    def changed(self) -> PatientState:
        """A copy to change, leaving this one as it was (the stored state is shared).

        Handlers change the containers, open alerts and pending results in place; a
        recorded result and a resolved alert are never changed, so the copy shares them.
        A copy per reading must be cheap: a full one costs more than all the rules."""
        return replace(
            self,
            latest=dict(self.latest),
            history=dict(self.history),  # record() replaces a measure's list
            pending_review={k: replace(p) for k, p in self.pending_review.items()},
            last_measured_at=dict(self.last_measured_at),
            alerts={
                k: replace(a, reading_ids=list(a.reading_ids)) if a.status != RESOLVED else a
                for k, a in self.alerts.items()
            },
            gap_closed_at=dict(self.gap_closed_at),
        )

    def has_seen(self, key: str) -> bool:
        digest, at = _digest(key), -1
        while (at := self.seen.find(digest, at + 1)) != -1:
            if at % DIGEST_BYTES == 0:  # a whole digest, not bytes across two
                return True
        return False

    def remember(self, *keys: str) -> None:
        added = b"".join(_digest(key) for key in keys)
        self.seen = (self.seen + added)[-RECENT_IDS_KEPT * DIGEST_BYTES :]

    def measured(self, loinc: str, at: datetime) -> None:
        """A measurement happened (validated or not): the monitoring-gap clock restarts."""
        current = self.last_measured_at.get(loinc)
        if current is None or at > current:
            self.last_measured_at[loinc] = at

    def record(self, loinc: str, result: Result) -> None:
        """Keep a validated result; the latest moves only for a later measurement time."""
        current = self.latest.get(loinc)
        if current is None or result.measured_at >= current.measured_at:
            self.latest[loinc] = result
        history = list(self.history.get(loinc, ()))
        # After any result of the same time, as a stable sort would put it; kept sorted, so
        # one insertion instead of sorting the history again on each reading.
        bisect.insort(history, result, key=_measured_at)
        self.history[loinc] = history[-HISTORY_KEPT:]
        self.measured(loinc, result.measured_at)

    def result_of(self, reading_id: str) -> tuple[str, Result] | None:
        """The measure and the kept result of `reading_id`, validated or awaiting review."""
        pending = self.pending_review.get(reading_id)
        if pending is not None:
            return pending.loinc_code, pending
        for loinc, history in self.history.items():
            for result in history:
                if result.reading_id == reading_id:
                    return loinc, result
        return None

    def forget(self, loinc: str, reading_id: str) -> None:
        """Take a validated result out of the history (its producer corrected it); the
        latest value falls back to the newest one left."""
        history = [r for r in self.history.get(loinc, []) if r.reading_id != reading_id]
        self.history[loinc] = history
        latest = self.latest.get(loinc)
        if latest is not None and latest.reading_id == reading_id:
            if history:
                self.latest[loinc] = history[-1]
            else:
                del self.latest[loinc]

    def alert_with(self, loinc: str, reading_id: str) -> AlertState | None:
        """The open alert on abnormal values of `loinc` that holds `reading_id`."""
        return next(
            (
                a
                for a in self.alerts.values()
                if a.is_open
                and a.loinc_code == loinc
                and a.episode == VALUES
                and reading_id in a.reading_ids
            ),
            None,
        )

    def open_alert(self, loinc: str, episode: str) -> AlertState | None:
        return next(
            (
                a
                for a in self.alerts.values()
                if a.loinc_code == loinc and a.episode == episode and a.status != RESOLVED
            ),
            None,
        )

    def running_episode(self, loinc: str) -> AlertState | None:
        """The open alert a further abnormal value of `loinc` joins: its run has not ended."""
        return next(
            (
                a
                for a in self.alerts.values()
                if a.loinc_code == loinc
                and a.episode == VALUES
                and not a.run_ended
                and a.status != RESOLVED
            ),
            None,
        )

    def add_alert(self, alert: AlertState) -> None:
        self.alerts[alert.alert_id] = alert
        self.alerts_raised += 1
        self.last_alert_id = alert.alert_id
        self._forget_old_alerts()

    def _forget_old_alerts(self) -> None:
        closed = sorted(
            (a for a in self.alerts.values() if not a.is_open), key=lambda a: a.raised_at
        )
        for alert in closed[:-CLOSED_ALERTS_KEPT]:
            del self.alerts[alert.alert_id]

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> PatientState:
        return msgspec.convert(data or {}, cls)

    @classmethod
    def of(cls, value: PatientState | dict[str, object] | None) -> PatientState:
        """The state a table holds (the object itself, or its JSON), empty when none."""
        return value if isinstance(value, PatientState) else cls.from_json(value)


DIGEST_BYTES = 8


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=DIGEST_BYTES).digest()


class _EarlierState(PatientState, kw_only=True, omit_defaults=True, gc=False):
    """A state as versions before the digests stored it: the ids themselves."""

    seen: list[str] = msgspec.field(default_factory=list)  # type: ignore[assignment]


def _from_earlier(earlier: _EarlierState) -> PatientState:
    fields = {name: getattr(earlier, name) for name in PatientState.__struct_fields__}
    state = PatientState(**{**fields, "seen": b""})
    state.remember(*earlier.seen[-RECENT_IDS_KEPT:])
    return state


# The table's stored form: MessagePack of the structs, field names kept (a field added later
# reads as its default). A state written as JSON by an earlier version still reads.
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(PatientState)
_EARLIER_DECODER = msgspec.msgpack.Decoder(_EarlierState)
_JSON_DECODER = msgspec.json.Decoder(_EarlierState)


def encode_state(state: PatientState) -> bytes:
    return _ENCODER.encode(state)


def decode_state(data: bytes) -> PatientState:
    # MessagePack opens a struct with a map byte (0x80-0x8f, 0xde); JSON with "{" (0x7b).
    if data[:1] == b"{":
        return _from_earlier(_JSON_DECODER.decode(data))
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError:  # its ids as a list of strings
        return _from_earlier(_EARLIER_DECODER.decode(data))
