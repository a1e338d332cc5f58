"""The fault suite's short round (tests/chaos) inside make test: three chronic instances under
one fault of each kind, then every output read back read_committed. The broker's kill -9 is
left to `make chaos`: this broker is the whole session's."""

from __future__ import annotations

import pytest

from tests.chaos.report import table
from tests.chaos.round import run_round, short_round
from tests.chaos.scenarios import SCENARIOS


@pytest.mark.timeout(600)
def test_a_short_round_of_faults_loses_nothing_and_does_nothing_twice(
    bootstrap, platform, tmp_path
):
    # The session's chronic reads the same input topics (another group): it would answer the
    # round's readings too, and its alerts would count as duplicates. It sits the round out.
    session_chronic = platform.services["chronic"]
    session_chronic.stop()
    try:
        report = run_round(
            short_round(7, broker_faults=False), SCENARIOS["chronic"], bootstrap, tmp_path
        )
    finally:
        session_chronic.start()
        session_chronic.wait_serving()
    print(table(report))

    kinds = sorted(fault.kind for fault in report.faults)
    assert kinds == sorted(
        [
            "kill-9",
            "sigterm",
            "sigstop",
            "leave-join",
            "poison-header",
            "poison-value",
            "poison-1mb",
        ]
    )
    for row in report.rows:
        assert (row.lost, row.dup_by_id, row.dup_by_meaning, row.unexpected) == (0, 0, 0, 0), row
        assert row.seen == row.expected, row
    poison = next(row for row in report.rows if row.what.startswith("poison"))
    assert poison.seen == poison.expected == 3
    assert report.unprocessed == {}
    assert report.produce_failures == 0
    assert all(fault.recovery_s is not None for fault in report.faults), table(report)
    assert report.ok
