"""Home-aide check-outs and partners reading their feeds."""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emeuse.simulate.calls import VISIT_LENGTH_S
from emeuse.simulate.events import Options
from emeuse.simulate.feed_reader import FeedTally, read_users, users_lines
from emeuse.simulate.feed_readers import FeedReaders
from emeuse.simulate.run import plan
from emeuse.simulate.send import Tally

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def visits(options: Options) -> tuple[dict[str, object], dict[str, object], int]:
    run_plan = plan(options, now=START)
    live = list(run_plan.live)
    ins = {e.message["visit_id"]: e for e in live if e.target == "home/CheckIn"}
    outs = {e.message["visit_id"]: e for e in live if e.target == "home/CheckOut"}
    planned = sum(1 for e in run_plan.stages[-1] if e.target == "home/PlanVisit")
    return ins, outs, planned


def test_aides_check_out_of_every_visit_they_checked_in_to_after_about_its_planned_length():
    # Three hours: long enough for whole visits, which start in the run's first half.
    options = Options(seed=31, scale=0.05, rate=1, duration=3 * 3600, missed_visit_rate=0.2)
    ins, outs, planned = visits(options)
    assert len(ins) / planned == pytest.approx(0.8, abs=0.1)
    assert set(outs) == set(ins)
    for visit, out in outs.items():
        stay = out.due - ins[visit].due  # type: ignore[attr-defined]
        assert 0.8 * VISIT_LENGTH_S <= stay <= 1.1 * VISIT_LENGTH_S
        left = datetime.fromisoformat(out.message["checked_out_at"].replace("Z", "+00:00"))  # type: ignore[attr-defined]
        assert left == out.at  # type: ignore[attr-defined]


def test_in_a_run_shorter_than_a_visit_the_aides_still_leave_before_it_ends():
    options = Options(seed=32, scale=0.05, rate=50, duration=60, missed_visit_rate=0.1)
    ins, outs, _ = visits(options)
    assert ins and set(outs) == set(ins)
    for visit, out in outs.items():
        assert ins[visit].due < out.due < options.duration  # type: ignore[attr-defined]


def test_a_partner_app_counts_what_its_feed_gives_it_and_what_consent_forbids():
    withdrew = START + timedelta(minutes=1)
    tally = FeedTally({"patient-a", "patient-b"}, {"patient-b": withdrew})
    tally.read("patient-a", START)
    tally.read("patient-b", START + timedelta(seconds=30))  # before the withdrawal: fed
    tally.read("patient-b", withdrew + timedelta(minutes=5))
    tally.read("patient-c", START)  # never consented
    assert tally.counts == Counter(
        {"partner.feed_read": 2, "partner.feed_after_withdrawal": 1, "partner.feed_unconsented": 1}
    )


def test_each_partner_app_is_told_its_own_users_and_when_they_withdrew():
    run_plan = plan(Options(seed=33, scale=0.05, consent_withdrawal_share=0.3), now=START)
    assert run_plan.withdrawn
    for partner_id in run_plan.partners:
        users, withdrawn = read_users(users_lines(run_plan.users, partner_id, run_plan.withdrawn))
        assert users == {p for p, partner in run_plan.users.items() if partner == partner_id}
        assert withdrawn == {p: at for p, at in run_plan.withdrawn.items() if p in users}


# A partner's app as a fake: waits for SIGTERM, then reports what it was "fed".
FAKE_APP = """
import json, os, signal, sys
users = open(os.environ["EMEUSE_SIM_FEED_USERS"]).read().split()
def stop(*_):
    report = {"partner.feed_read": len(users), "partner.feed_unconsented": 1}
    open(os.environ["EMEUSE_SIM_FEED_REPORT"], "w").write(json.dumps(report))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
signal.pause()
"""


def test_what_the_partner_apps_were_fed_ends_in_the_runs_tally_and_a_forbidden_read_fails_it(
    tmp_path: Path,
):
    tally = Tally()
    users = {"patient-a": "sim-one", "patient-b": "sim-one", "patient-c": "sim-two"}
    readers = FeedReaders(
        ["sim-one", "sim-two"], users, {}, tmp_path, tally, command=[sys.executable, "-c", FAKE_APP]
    )
    readers.start()
    deadline = time.monotonic() + 30
    for partner_id in readers.processes:  # each is running before it is stopped
        log = readers.folder / f"{partner_id}.log"
        while b"ready" not in log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
    readers.stop()
    assert tally.sent["partner.feed_read"] == 3
    assert tally.failed["partner.feed_unconsented"] == 2
    assert any("never consented" in reason for reason in tally.reasons)


def test_an_app_that_stopped_without_a_report_is_a_failure_naming_its_log(tmp_path: Path):
    tally = Tally()
    readers = FeedReaders(
        ["sim-one"], {}, {}, tmp_path, tally, command=[sys.executable, "-c", "pass"]
    )
    readers.start()
    readers.stop()
    assert tally.failed["partner.feed_read"] == 1
    assert any("sim-one.log" in reason for reason in tally.reasons)
