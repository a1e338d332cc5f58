"""Declaring handlers, and `emeuse partner run module:app`."""

from __future__ import annotations

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.cli.errors import CliError
from emeuse.cli.main import main
from emeuse.cli.partner_run import load_app
from emeuse.partner import PartnerApp


def test_a_partner_declares_one_handler_per_event_type():
    app = PartnerApp("glucoflow")

    @app.handles(ReadingRecorded)
    async def on_reading(event, reading):
        pass

    @app.handles(AlertRaised)
    async def on_alert(event, alert):
        pass

    assert app.event_types == [
        "emeuse.chronic.v1.AlertRaised",
        "emeuse.chronic.v1.ReadingRecorded",
    ]
    with pytest.raises(ValueError, match="already has a handler"):
        app.handles(ReadingRecorded)(on_reading)


def test_a_handler_must_be_a_coroutine():
    app = PartnerApp("glucoflow")
    with pytest.raises(TypeError, match="async def"):

        @app.handles(ReadingRecorded)
        def on_reading(event, reading):
            pass


def test_partner_run_loads_the_example_app():
    app = load_app("examples.glucoflow.app:app")
    assert "emeuse.chronic.v1.ReadingRecorded" in app.event_types


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("examples.glucoflow.app", "expected module:attribute"),
        ("examples.nowhere:app", "cannot import examples.nowhere"),
        ("json:dumps", "not a PartnerApp"),
    ],
)
def test_partner_run_refuses_what_is_not_an_app(target, named):
    with pytest.raises(CliError, match=named):
        load_app(target)


def test_partner_run_with_a_bad_setting_exits_2_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("EMEUSE_PARTNER_RETRIES", "many")
    assert main(["partner", "run", "examples.glucoflow.app:app"]) == 2
    assert "EMEUSE_PARTNER_RETRIES" in capsys.readouterr().err
