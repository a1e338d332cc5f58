"""A --dry-run file read back as the run it describes (what `make bench` replays)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from emeuse.simulate.events import Options
from emeuse.simulate.replay import read_events, record_id
from emeuse.simulate.run import plan, run
from emeuse.simulate.send import FileTransport

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def dry_run(options: Options) -> str:
    out = io.StringIO()
    run(options, FileTransport(out), Console(quiet=True), sleep=lambda _: None)
    return out.getvalue()


def test_a_dry_run_file_reads_back_as_its_setup_stages_then_its_live_events_in_order():
    options = Options(seed=21, duration=20, rate=200, start=START, malformed_rate=0.05)
    replay = read_events(dry_run(options).splitlines())
    expected = plan(options, now=START)
    assert [[e.to_json() for e in stage] for stage in replay.stages] == [
        [e.to_json() for e in stage] for stage in expected.stages
    ]
    assert [e.to_json() for e in replay.live] == [e.to_json() for e in expected.live]
    # The second stage only once the first is answered: a campaign before its approval.
    kinds = [{e.kind for e in stage} for stage in replay.stages]
    assert "setup.campaign" in kinds[0] and "setup.campaign_approved" in kinds[1]
    # The malformed share, bytes that are no event included, is there to be accounted for.
    assert replay.malformed and all(e.kind.startswith("malformed") for e in replay.malformed)
    assert any(e.raw is not None for e in replay.malformed)


def test_an_event_read_back_keeps_the_id_its_record_is_sent_with():
    options = Options(seed=22, duration=5, rate=50, start=START)
    [first, *_] = list(plan(options, now=START).live)
    [again] = read_events([first.to_json()]).live
    assert record_id(again) == record_id(first)


def test_a_line_that_is_no_simulated_event_is_refused_with_its_line_number():
    [first, *_] = list(plan(Options(seed=23, duration=5, rate=50, start=START), now=START).live)
    with pytest.raises(ValueError, match="line 2 is not a simulated event"):
        read_events([first.to_json(), '{"kind": "reading"}'])
