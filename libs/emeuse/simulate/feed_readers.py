"""The simulated partners' apps, one process each (`feed_reader`), reading their feeds
while the run lasts; what they were fed is counted in the run's tally when they stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from emeuse.simulate.feed_reader import users_lines
from emeuse.simulate.send import Tally

STOP_GRACE_S = 20
# What a partner's app must never be fed, and why it counts as a failure.
FORBIDDEN = {
    "partner.feed_unconsented": "a partner was fed a reading of a patient who never consented",
    "partner.feed_after_withdrawal": "a partner was fed a reading from after its withdrawal",
}


class FeedReaders:
    def __init__(
        self,
        partner_ids: list[str],
        users: dict[str, str],
        withdrawn: dict[str, datetime],
        secrets_dir: Path,
        tally: Tally,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        experiment: str = "",
    ) -> None:
        """`command`: the partner's app (default the SDK app of `feed_reader`);
        `experiment`: the run's, the only one whose readings the apps judge."""
        self.partner_ids, self.users, self.withdrawn = partner_ids, users, withdrawn
        self.experiment = experiment
        self.secrets_dir, self.tally = secrets_dir, tally
        self.env = dict(os.environ if env is None else env)
        self.folder = Path(tempfile.mkdtemp(prefix="emeuse-simulate-feeds-"))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.command = command or [sys.executable, "-m", "emeuse.simulate.feed_reader"]

    def start(self) -> None:
        for partner_id in self.partner_ids:
            users = self.folder / f"{partner_id}.users"
            users.write_text(users_lines(self.users, partner_id, self.withdrawn))
            env = self.env | {
                "EMEUSE_PARTNER_ID": partner_id,
                "EMEUSE_PARTNER_CONFIG": str(self.secrets_dir / f"{partner_id}.properties"),
                "EMEUSE_PARTNER_GROUP": "simulate",
                # No /metrics: two apps would want the same default port (9201), and a
                # partner's real app may be serving there.
                "EMEUSE_PARTNER_METRICS_PORT": "0",
                "EMEUSE_SIM_FEED_USERS": str(users),
                "EMEUSE_SIM_FEED_EXPERIMENT": self.experiment,
                "EMEUSE_SIM_FEED_REPORT": str(self.folder / f"{partner_id}.json"),
            }
            env.pop("EMEUSE_PARTNER_LOCAL", None)
            log = (self.folder / f"{partner_id}.log").open("ab")
            self.processes[partner_id] = subprocess.Popen(
                self.command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for partner_id, process in self.processes.items():
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._count(partner_id)

    def _count(self, partner_id: str) -> None:
        report = self.folder / f"{partner_id}.json"
        if not report.exists():
            log = self.folder / f"{partner_id}.log"
            self.tally.fail("partner.feed_read", f"partner {partner_id}'s app stopped: see {log}")
            return
        for kind, times in json.loads(report.read_text()).items():
            if kind in FORBIDDEN:
                self.tally.fail(kind, FORBIDDEN[kind], times)
            else:
                self.tally.count(kind, times)
