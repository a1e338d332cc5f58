"""What the simulation sends, as plain data: one `SimEvent` per call or record.

An event holds its message in proto3 JSON, so the generator imports no generated code,
the same events can be written to a file (`--dry-run`) and compared between runs.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KAFKA, GRPC = "kafka", "grpc"


@dataclass(frozen=True)
class Options:
    """Everything that decides the events: the same options give the same events."""

    seed: int = 1
    scale: float = 0.01
    rate: float = 50.0  # live events per second
    duration: float = 60.0  # seconds of live events
    speed: float = 1.0  # simulated seconds per second: the live events' times spread this much
    start: datetime | None = None  # time of the first live event (the run's start by default)
    territories: tuple[str, ...] = ()  # département codes; all three when empty
    experiment: str = "simulation"
    # The territories in the order the experiment reaches them, a step's joined by + (the
    # first from the start); rollout_at: when it reaches the second step (None: everywhere
    # from the start), rollout_then: the third's and on, if not the same (rollout.py).
    rollout: tuple[str, ...] = ("55", "52+54")
    rollout_at: datetime | None = None
    rollout_then: tuple[datetime, ...] = ()
    baseline_experiment: str = "usual-care"  # what 52's and 54's events belong to before
    acknowledge_within_s: int = 1800  # care teams' and home contacts' delay to acknowledge
    expected_every_s: int = 0  # every monitored measure's interval; 0: its real cadence
    critical_rate: float = 0.02  # share of readings beyond a critical threshold
    warning_rate: float = 0.05  # share of readings outside the normal range
    gap_share: float = 0.05  # share of patients whose devices stop (monitoring gaps)
    fall_rate: float = 0.003  # share of home reports that are falls
    panic_rate: float = 0.001
    wandering_rate: float = 0.003  # share of night-time home reports that are a door left open
    duplicate_rate: float = 0.01  # share of records sent again as they were
    late_rate: float = 0.02  # share of records that arrive 1-30 min after they happened
    malformed_rate: float = 0.005  # share of records that are not valid events
    acknowledged_share: float = 0.8  # share of alerts and incidents someone acknowledges
    missed_visit_rate: float = 0.1  # share of planned home-aide visits nobody checks in to
    visit_missed_after_s: int = 1800  # how long after its start a visit counts as missed
    opt_out_share: float = 0.02  # share of prevention enrollees who opt out during the run
    no_show_rate: float = 0.1  # share of booked consultations the patient does not come to
    partner_share: float = 0.3  # share of a partner's programme's patients using its device
    consent_withdrawal_share: float = 0.05  # share of partner users withdrawing consent
    receipt_share: float = 0.9  # share of messages handed for delivery that get a receipt
    delivery_failed_rate: float = 0.05  # share of receipts saying the delivery failed
    reminder_acted_share: float = 0.3  # share of delivered reminders reported acted on

    def rates(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if k.endswith(("_rate", "_share"))}


@dataclass(frozen=True)
class SimEvent:
    kind: str  # what it is, e.g. "reading", "reading.critical", "home.fall", "enrol.patient"
    via: str  # KAFKA or GRPC
    target: str  # topic name, or "<service>/<Method>"
    territory: str  # département code
    subject: str  # pseudonym of the person concerned ("" for a directory entry)
    at: datetime  # when it happened (a measure, a report) or is sent (a call)
    event_id: str
    message: dict[str, Any] = field(default_factory=dict)  # proto3 JSON
    raw: bytes | None = None  # a malformed record: these bytes instead of the message
    due: float = 0.0  # seconds after the first live event when it is sent
    stage: int = 0  # the setup stage it belongs to (1, 2), 0 for a live event
    experiment: str = ""  # the experiment its envelope names ("": the run's --experiment)

    def to_json(self) -> str:
        line: dict[str, Any] = {
            "kind": self.kind,
            "via": self.via,
            "target": self.target,
            "territory": self.territory,
            "subject": self.subject,
            "at": self.at.isoformat(),
            "event_id": self.event_id,
            "due": round(self.due, 6),
        }
        if self.stage:
            line["stage"] = self.stage
        if self.experiment:
            line["experiment"] = self.experiment
        if self.raw is not None:
            line["raw_base64"] = base64.b64encode(self.raw).decode()
        else:
            line["message"] = self.message
        return json.dumps(line, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SimEvent:
        """The event a line of `to_json` (a --dry-run file) holds."""
        line = json.loads(text)
        raw = line.get("raw_base64")
        return cls(
            line["kind"],
            line["via"],
            line["target"],
            line["territory"],
            line["subject"],
            datetime.fromisoformat(line["at"]),
            line["event_id"],
            line.get("message", {}),
            base64.b64decode(raw) if raw is not None else None,
            line["due"],
            line.get("stage", 0),
            line.get("experiment", ""),
        )


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def duration(seconds: float) -> str:
    return f"{seconds:g}s"
