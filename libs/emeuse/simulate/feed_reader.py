"""A simulated partner reading its feed, as a partner's app does with the Python SDK.

Run once per partner by the simulator, in a process of its own (the SDK's app owns its
event loop and its signals, as a partner's own program would):

    EMEUSE_PARTNER_ID=sim-glucometer EMEUSE_PARTNER_CONFIG=<its settings file> \
    EMEUSE_SIM_FEED_USERS=<file> EMEUSE_SIM_FEED_REPORT=<file> \
    python -m emeuse.simulate.feed_reader

It reads the partner's feed with the partner's own credential (`PartnerApp`, group
`simulate`) and counts what it was fed: readings of patients consenting to it, and any
reading of a patient who never did (the gateway should feed none) or that happened after
the patient withdrew (`EMEUSE_SIM_FEED_USERS`: one line per user, `pseudonym` or
`pseudonym withdrawn-at`). Readings of another experiment than the run's
(`EMEUSE_SIM_FEED_EXPERIMENT`: an earlier run's, still in the feed) are counted apart, not
judged. On SIGTERM it writes the counts to `EMEUSE_SIM_FEED_REPORT`.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.partner.app import PartnerApp

# The gateway applies a withdrawal within about a second of it (benchmarks: p95 under 1 s);
# a reading it fed that happened within this of the withdrawal is not counted against it.
WITHDRAWAL_TOLERANCE = timedelta(seconds=5)


class FeedTally:
    """What one partner was fed, judged against the consents the simulation gave it."""

    def __init__(
        self, users: set[str], withdrawn_at: dict[str, datetime], experiment: str = ""
    ) -> None:
        self.users, self.withdrawn_at, self.experiment = users, withdrawn_at, experiment
        self.counts: Counter[str] = Counter()

    def read(self, patient: str, measured_at: datetime, experiment: str = "") -> None:
        if self.experiment and experiment != self.experiment:
            # An earlier run's (another experiment) reading, still in the partner's feed:
            # its consents are not this run's to judge.
            self.counts["partner.feed_other_runs"] += 1
            return
        if patient not in self.users:
            self.counts["partner.feed_unconsented"] += 1
            return
        withdrawn = self.withdrawn_at.get(patient)
        if withdrawn is not None and measured_at > withdrawn + WITHDRAWAL_TOLERANCE:
            self.counts["partner.feed_after_withdrawal"] += 1
            return
        self.counts["partner.feed_read"] += 1


def users_lines(users: dict[str, str], partner_id: str, withdrawn: dict[str, datetime]) -> str:
    """The EMEUSE_SIM_FEED_USERS file of one partner."""
    lines = []
    for patient, partner in sorted(users.items()):
        if partner == partner_id:
            at = withdrawn.get(patient)
            lines.append(f"{patient} {at.isoformat()}" if at else patient)
    return "\n".join(lines) + "\n"


def read_users(text: str) -> tuple[set[str], dict[str, datetime]]:
    users: set[str] = set()
    withdrawn: dict[str, datetime] = {}
    for line in text.splitlines():
        patient, _, at = line.strip().partition(" ")
        if patient:
            users.add(patient)
            if at:
                withdrawn[patient] = datetime.fromisoformat(at)
    return users, withdrawn


app = PartnerApp()
tally = FeedTally(set(), {})


@app.handles(ReadingRecorded)
async def on_reading(event: EventEnvelope, reading: ReadingRecorded) -> None:
    tally.read(
        reading.patient_pseudonym,
        reading.measured_at.ToDatetime(tzinfo=UTC),
        event.experiment_id,
    )


def main() -> int:
    users, withdrawn = read_users(Path(os.environ["EMEUSE_SIM_FEED_USERS"]).read_text())
    tally.users, tally.withdrawn_at = users, withdrawn
    tally.experiment = os.environ.get("EMEUSE_SIM_FEED_EXPERIMENT", "")
    status = app.run()
    Path(os.environ["EMEUSE_SIM_FEED_REPORT"]).write_text(json.dumps(dict(tally.counts)))
    return status


if __name__ == "__main__":
    sys.exit(main())
