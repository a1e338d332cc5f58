"""Declaring handlers, and `emeuse partner run module:app`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.cli.errors import CliError
from emeuse.cli.main import main
from emeuse.cli.partner_run import load_app
from emeuse.partner import PartnerApp, PublishError
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym

NOW = timestamp(datetime.now(UTC))


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
    assert main(["partner", "run", "--local", "examples.glucoflow.app:app"]) == 2
    assert "EMEUSE_PARTNER_RETRIES" in capsys.readouterr().err


def test_partner_run_without_credentials_stops_before_connecting(capsys, monkeypatch):
    for name in ("EMEUSE_PARTNER_CONFIG", "EMEUSE_PARTNER_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["partner", "run", "examples.glucoflow.app:app"]) == 2
    assert "no credentials: set EMEUSE_PARTNER_CONFIG" in capsys.readouterr().err


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_and_wait(self, topic, **_):
        self.sent.append(topic)


def test_publish_checks_the_settings_files_grants_and_sends_nothing_refused(tmp_path):
    settings = tmp_path / "glucoflow.properties"
    settings.write_text(
        "bootstrap.servers=127.0.0.1:9094\nsecurity.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=SCRAM-SHA-512\nsasl.username=partner-glucoflow\nsasl.password=x\n"
        "#emeuse.publish=emeuse.chronic.v1.ReadingRecorded\n#emeuse.experiments=glucoflow-pilot\n"
    )
    app = PartnerApp("glucoflow")
    app.configure({"EMEUSE_PARTNER_CONFIG": str(settings)})
    producer = RecordingProducer()
    app._producer = producer  # type: ignore[assignment]
    alert = AlertRaised(
        alert_id="a-1", patient_pseudonym=random_pseudonym(), rule="inr-high", raised_at=NOW
    )
    with pytest.raises(PublishError, match="not granted"):
        asyncio.run(app.publish(alert, territory="55"))
    reading = ReadingRecorded(
        reading_id="r-1",
        patient_pseudonym=random_pseudonym(),
        loinc_code="2339-0",
        value=104,
        unit="mg/dL",
        measured_at=NOW,
    )
    with pytest.raises(PublishError, match="experiment 'elsewhere'"):
        asyncio.run(app.publish(reading, territory="55", experiment_id="elsewhere"))
    assert producer.sent == []
    # The settings file's experiment is the default: this one goes.
    envelope = asyncio.run(app.publish(reading, territory="55"))
    assert envelope.experiment_id == "glucoflow-pilot"
    assert producer.sent == ["emeuse-partner.glucoflow.inbound"]
