"""`emeuse audit`: its filters and its table."""

import argparse
import json
from datetime import UTC, datetime

import pytest

from emeuse.cli.audit import cmd_audit, parse_since, print_table, row_of
from emeuse.cli.errors import CliError
from emeuse.cli.main import main
from emeuse.runtime.audit import access_records

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
PATIENT = "psn-" + "a" * 32


def test_since_takes_an_age_or_a_time():
    assert parse_since("90m", NOW) == datetime(2026, 12, 7, 6, 30, tzinfo=UTC)
    assert parse_since("7d", NOW) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert parse_since("2026-12-01", NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T08:00Z", NOW) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(CliError, match="--since 'yesterday'"):
        parse_since("yesterday", NOW)


def test_a_refusal_shows_its_reason_beside_its_outcome(capsys):
    [record] = access_records(
        service="chronic",
        method="/emeuse.chronic.v1.ChronicService/GetPatientStatus",
        caller_id="gp-9",
        role="care-team",
        write=False,
        subjects=[PATIENT],
        outcome="PERMISSION_DENIED",
        refusal_reason="caller gp-9 is not on this patient's care team",
        answered_at=NOW,
    )
    print_table([row_of(record)])
    header, _, row = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["answered", "at", "(UTC)", "caller"]
    assert header.split()[4:6] == ["role", "purpose"]
    assert row.split()[:8] == [
        "2026-12-07",
        "08:00:00",
        "gp-9",
        "care-team",
        "TREAT",
        "chronic.GetPatientStatus",
        "read",
        PATIENT,
    ]
    assert row.endswith("PERMISSION_DENIED: caller gp-9 is not on this patient's care team")


@pytest.mark.parametrize("option", ["--subject", "--patient"])
def test_a_subject_that_is_not_a_pseudonym_is_refused_before_reading(capsys, option):
    assert main(["audit", option, "Jean Dupont", "--bootstrap", "127.0.0.1:1"]) == 1
    assert "--subject: expected a platform pseudonym" in capsys.readouterr().err


def test_the_purpose_of_use_shows_in_the_table_and_in_json(capsys, monkeypatch):
    records = [
        *access_records(
            service="gateway",
            method="/emeuse.partners.v1.PartnerGatewayService/GetPatientConsents",
            caller_id="coord-55",
            role="coordinator",
            write=False,
            subjects=[PATIENT],
            outcome="OK",
            answered_at=NOW,
        ),
        *access_records(
            service="chronic",
            method="/emeuse.chronic.v1.ChronicService/GetPatientStatus",
            caller_id="unknown",
            role="",
            write=False,
            subjects=[PATIENT],
            outcome="UNAUTHENTICATED",
            answered_at=NOW,
        ),
    ]
    monkeypatch.setattr("emeuse.cli.audit._records", lambda *_: iter(records))

    def show(as_json: bool) -> str:
        args = argparse.Namespace(
            patient=PATIENT, caller=None, since=None, json=as_json, timeout=1.0, bootstrap="-"
        )
        assert cmd_audit(args, connect=lambda _: _Closing()) == 0
        return capsys.readouterr().out

    _, _, coordinator, unknown = show(as_json=False).splitlines()
    assert coordinator.split()[3:5] == ["coordinator", "COC"]
    assert unknown.split()[3:5] == ["-", "-"]  # no known token: no role, no purpose
    shown = [json.loads(line) for line in show(as_json=True).splitlines()]
    assert [r.get("purpose_of_event") for r in shown] == ["COC", None]


class _Closing:
    def close(self) -> None:
        pass
