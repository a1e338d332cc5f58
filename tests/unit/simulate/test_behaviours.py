"""Home-aide check-outs, partners reading their feeds, experiments rolled out per territory."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emeuse.cli.main import main
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


def test_a_partner_app_judges_only_its_runs_readings_in_a_feed_earlier_runs_filled():
    tally = FeedTally({"patient-a"}, {}, experiment="this-run")
    tally.read("patient-a", START, "this-run")
    tally.read("patient-z", START, "earlier-run")  # another run's patient, still in the feed
    tally.read("patient-c", START, "this-run")  # this run's, never consented
    assert tally.counts == Counter(
        {"partner.feed_read": 1, "partner.feed_other_runs": 1, "partner.feed_unconsented": 1}
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


def rolled_out(rollout_at: datetime, seed: int = 34) -> Options:
    # A day of events sent in a minute: the times span the 24 h before the run ends.
    return Options(
        seed=seed,
        scale=0.02,
        rate=300,
        duration=60,
        speed=1440,
        start=START,
        rollout_at=rollout_at,
        experiment="telesuivi",
        baseline_experiment="usual-care",
    )


def test_an_experiment_reaches_52_and_54_from_its_rollout_date_and_is_in_55_from_the_start():
    noon = START - timedelta(hours=12)  # half-way through the simulated day
    live = [e for e in plan(rolled_out(noon), now=START).live if e.via != "grpc"]
    in_55 = [e for e in live if e.territory == "55"]
    elsewhere = [e for e in live if e.territory in ("52", "54")]
    assert in_55 and elsewhere
    assert all(e.experiment == "" for e in in_55)  # the run's own, telesuivi
    for event in elsewhere:
        assert event.experiment == ("usual-care" if event.at < noon else "")
    before = sum(1 for e in elsewhere if e.experiment == "usual-care")
    assert before / len(elsewhere) == pytest.approx(0.5, abs=0.05)
    # Written to a --dry-run file, an event says its experiment when it is not the run's.
    assert json.loads(next(e for e in elsewhere if e.at < noon).to_json())["experiment"]


def test_before_the_rollout_52_and_54_enrol_under_their_usual_care_and_55_in_the_experiment():
    later = START + timedelta(days=30)
    stages = plan(rolled_out(later), now=START).stages
    enrolments = [e for stage in stages for e in stage if "experiment_id" in e.message]
    assert {e.territory for e in enrolments} == {"55", "52", "54"}
    for event in enrolments:
        expected = "telesuivi" if event.territory == "55" else "usual-care"
        assert event.message["experiment_id"] == expected, event.kind
    # The same seed and options: the same events, experiments included.
    again = plan(rolled_out(later), now=START).stages
    assert [e.to_json() for s in again for e in s] == [e.to_json() for s in stages for e in s]


def test_without_a_rollout_every_event_is_the_runs_experiments():
    options = Options(seed=35, duration=10, start=START)
    run_plan = plan(options, now=START)
    assert all(e.experiment == "" for e in run_plan.live)
    enrolments = [e for stage in run_plan.stages for e in stage if "experiment_id" in e.message]
    assert {e.message["experiment_id"] for e in enrolments} == {"simulation"}


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--rollout-at", "2026-12-07T08:00:00"], "--rollout-at needs a UTC offset"),
        (
            ["--rollout-at", "2026-12-07T08:00Z", "--baseline-experiment", "simulation"],
            "must differ",
        ),
        (["--baseline-experiment", "Usual Care"], "is not an experiment id"),
    ],
)
def test_a_rollout_asked_wrongly_is_refused_with_a_clear_error(arguments, said, capsys):
    assert main(["simulate", "--dry-run", "/dev/null", *arguments]) == 1
    assert said in capsys.readouterr().err


def test_a_rollout_in_another_order_reaches_each_territory_from_its_own_date():
    # 54 first, then 55 at 08:00 (simulated), then 52 at 16:00, over a day of events.
    morning, afternoon = START - timedelta(hours=16), START - timedelta(hours=8)
    options = replace(rolled_out(morning), rollout=("54", "55", "52"), rollout_then=(afternoon,))
    live = [e for e in plan(options, now=START).live if e.via != "grpc"]
    since = {"54": None, "55": morning, "52": afternoon}
    for territory, date in since.items():
        events = [e for e in live if e.territory == territory]
        assert events, territory
        for event in events:
            before = date is not None and event.at < date
            assert event.experiment == ("usual-care" if before else ""), territory
        if date is not None:  # both sides of its date are in the run
            assert {e.experiment for e in events} == {"usual-care", ""}


def test_the_rollout_order_and_its_dates_are_taken_from_the_command_line(tmp_path):
    out = tmp_path / "events.jsonl"
    arguments = ["simulate", "--dry-run", str(out), "--scale", "0.02", "--rate", "300"]
    arguments += ["--speed", "1440", "--start", START.isoformat(), "--rollout", "55,52,54"]
    arguments += ["--rollout-at", (START - timedelta(hours=16)).isoformat()]
    arguments += ["--rollout-at", (START - timedelta(hours=8)).isoformat()]
    assert main(arguments) == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    live = [e for e in events if not e.get("stage") and e["via"] != "grpc"]
    in_54 = [e for e in live if e["territory"] == "54"]
    in_52 = [e for e in live if e["territory"] == "52"]
    share_54 = sum(1 for e in in_54 if e.get("experiment")) / len(in_54)
    share_52 = sum(1 for e in in_52 if e.get("experiment")) / len(in_52)
    # Usual care for 16 h of the day in 54, for 8 h in 52; none in 55.
    assert share_54 == pytest.approx(16 / 24, abs=0.05)
    assert share_52 == pytest.approx(8 / 24, abs=0.05)
    assert not any(e.get("experiment") for e in live if e["territory"] == "55")


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--rollout", "55,52", "--rollout-at", "2026-12-07T08:00Z"], "must name 55, 52 and 54"),
        (["--rollout", "55,52,54,55", "--rollout-at", "2026-12-07T08:00Z"], "once each"),
        (["--rollout", "55,52,54"], "--rollout needs --rollout-at"),
        (["--rollout", "55+52+54", "--rollout-at", "2026-12-07T08:00Z"], "is one step"),
        (["--rollout", "55+52+54"], "is one step"),
        (
            [f"--rollout-at=2026-12-07T{hour}:00Z" for hour in ("08", "09", "10")],
            "3 --rollout-at for 1 later step",
        ),
        (
            [
                "--rollout=55,52,54",
                "--rollout-at=2026-12-07T09:00Z",
                "--rollout-at=2026-12-07T08:00Z",
            ],
            "later than the one before",
        ),
    ],
)
def test_a_rollout_order_asked_wrongly_is_refused_with_a_clear_error(arguments, said, capsys):
    assert main(["simulate", "--dry-run", "/dev/null", *arguments]) == 1
    assert said in capsys.readouterr().err
