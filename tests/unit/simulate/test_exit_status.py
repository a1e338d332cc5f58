"""The exit status of `emeuse simulate` never contradicts what it printed: a call that fails
as the transport closes, after the summary, is named on a line of its own."""

from __future__ import annotations

from typing import Any

import pytest

from emeuse.cli import simulate as cli
from emeuse.cli.main import main
from emeuse.simulate.send import Tally


class ClosingFails:
    """The platform's transport, as a fake: closing answers a call still queued, failed."""

    tally = Tally()

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def close(self) -> None:
        self.tally.done(
            "care_team.alert_acknowledged", "chronic/AcknowledgeAlert not sent: closing"
        )


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> type[ClosingFails]:
    ClosingFails.tally = Tally()
    monkeypatch.setattr(cli, "read_token", lambda _: "token")
    monkeypatch.setattr(cli, "tool_grpc_tls", lambda: None)
    monkeypatch.setattr(cli, "tool_kafka_login", lambda: None)
    monkeypatch.setattr(cli, "PlatformTransport", ClosingFails)
    monkeypatch.setattr(cli, "PlatformLag", lambda *_, **__: None)
    monkeypatch.setattr(cli, "run", lambda *_, **__: ClosingFails.tally)
    return ClosingFails


def test_a_call_failing_while_closing_is_said_and_sets_the_exit_status(platform, capsys):
    assert main(["simulate", "--duration", "1", "--rate", "1"]) == 1
    out = capsys.readouterr().out
    assert "failed after the summary, while closing: care_team.alert_acknowledged 1" in out


def test_nothing_more_is_said_when_nothing_failed_late(platform, capsys, monkeypatch):
    monkeypatch.setattr(platform, "close", lambda self: None)
    assert main(["simulate", "--duration", "1", "--rate", "1"]) == 0
    assert "failed after the summary" not in capsys.readouterr().out
