"""`emeuse consent` and `emeuse partner replay` call the partner gateway with the operator's
token: here a gateway of our own, in process, that records what it was asked."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
import pytest

from emeuse.cli.main import main
from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.partners.v1 import gateway_service_pb2_grpc as api_grpc
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.pseudonym import random_pseudonym

TOKEN = "t" * 43
PATIENT = random_pseudonym()


@dataclass
class FakeGateway(api_grpc.PartnerGatewayServiceServicer):
    asked: list = field(default_factory=list)
    tokens: list = field(default_factory=list)

    def _note(self, request, context) -> None:
        self.asked.append(request)
        self.tokens.append(dict(context.invocation_metadata()).get("authorization"))

    def RecordConsent(self, request, context):
        self._note(request, context)
        if request.partner_id == "nobody":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such partner (or removed)")
        return api.RecordConsentResponse(event_id="ev-1")

    def GetPatientConsents(self, request, context):
        self._note(request, context)
        consent = api.PatientConsent(partner_id="glucoflow", purpose="remote-monitoring")
        consent.history.add(
            granted=True,
            changed_at=timestamp(datetime(2027, 3, 1, tzinfo=UTC)),
            covers_from=timestamp(datetime(2027, 1, 15, tzinfo=UTC)),
        )
        consent.history.add(granted=False, changed_at=timestamp(datetime(2027, 3, 2, tzinfo=UTC)))
        return api.GetPatientConsentsResponse(consents=[consent])

    def Replay(self, request, context):
        self._note(request, context)
        return api.ReplayResponse(replay_id="rp-1", events_replayed=3, events_withheld=2)


@pytest.fixture
def gateway(tmp_path) -> Iterator[tuple[FakeGateway, list[str]]]:
    fake = FakeGateway()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_grpc.add_PartnerGatewayServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    token_file = tmp_path / "operator.token"
    token_file.write_text(TOKEN + "\n")
    yield fake, ["--gateway", f"127.0.0.1:{port}", "--token-file", str(token_file)]
    server.stop(None)


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_consent_record_and_withdraw_call_the_gateway_with_the_operators_token(capsys, gateway):
    fake, options = gateway
    change = ["--partner", "glucoflow", "--purpose", "remote-monitoring", "--territory", "55"]
    status, out, _ = run(capsys, "consent", "record", PATIENT, *change, *options)
    assert status == 0
    assert "consent recorded: glucoflow/remote-monitoring (event ev-1)" in out
    assert PATIENT not in out  # the pseudonym is not echoed where logs may keep it
    status, out, _ = run(capsys, "consent", "withdraw", PATIENT, *change, *options)
    assert status == 0 and "consent withdrawn" in out
    recorded, withdrawn = fake.asked
    assert (recorded.patient_pseudonym, recorded.partner_id, recorded.granted) == (
        PATIENT,
        "glucoflow",
        True,
    )
    assert recorded.territory == "55" and recorded.experiment_id
    assert withdrawn.granted is False
    assert fake.tokens == [f"Bearer {TOKEN}"] * 2


def test_consent_show_lists_each_consent_with_its_history(capsys, gateway):
    _, options = gateway
    status, out, _ = run(capsys, "consent", "show", PATIENT, *options)
    assert status == 0
    header, row = out.strip().splitlines()
    assert header.split() == ["PARTNER", "PURPOSE", "STANDS", "HISTORY"]
    assert row.split()[:3] == ["glucoflow", "remote-monitoring", "no"]
    assert (
        "granted 2027-03-01T00:00:00+00:00 (covering from 2027-01-15T00:00:00+00:00), "
        "withdrawn 2027-03-02T00:00:00+00:00"
    ) in row


def test_a_consent_recorded_with_its_coverage_asks_the_gateway_for_it(capsys, gateway):
    fake, options = gateway
    change = ["--partner", "glucoflow", "--purpose", "remote-monitoring", "--territory", "55"]
    status, out, _ = run(
        capsys, "consent", "record", PATIENT, *change, "--covers-from", "2026-09-01", *options
    )
    assert status == 0 and "covers the patient's data from 2026-09-01" in out
    [asked] = fake.asked
    assert asked.covers_from.ToDatetime(tzinfo=UTC) == datetime(2026, 9, 1, tzinfo=UTC)


def test_a_backfill_replays_one_patients_events_without_a_date(capsys, gateway):
    fake, options = gateway
    status, out, _ = run(capsys, "partner", "replay", "glucoflow", "--patient", PATIENT, *options)
    assert status == 0
    [asked] = fake.asked
    assert asked.patient_pseudonym == PATIENT and not asked.HasField("since")
    assert "one patient's events, all that the consent covers" in out
    assert PATIENT not in out


def test_partner_replay_asks_the_gateway_from_the_given_date(capsys, gateway):
    fake, options = gateway
    status, out, _ = run(
        capsys, "partner", "replay", "glucoflow", "--since", "2026-03-01", *options
    )
    assert status == 0
    [asked] = fake.asked
    assert asked.partner_id == "glucoflow"
    assert asked.since.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 1, tzinfo=UTC)
    assert "replayed  3 event(s)" in out and "withheld  2 event(s)" in out


def test_the_gateways_refusal_is_one_line_with_its_status(capsys, gateway):
    _, options = gateway
    change = ["--partner", "nobody", "--purpose", "remote-monitoring", "--territory", "55"]
    status, _, err = run(capsys, "consent", "record", PATIENT, *change, *options)
    assert status == 1
    assert err.strip().endswith("NOT_FOUND: no such partner (or removed)")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["partner", "replay", "glucoflow", "--since", "last week"], "expected an ISO date"),
        (["partner", "replay", "glucoflow", "--since", "2999-01-01"], "in the future"),
        (["partner", "replay", "glucoflow"], "give --since"),
    ],
)
def test_a_bad_replay_date_is_refused_before_the_gateway(capsys, gateway, argv, named):
    fake, options = gateway
    status, _, err = run(capsys, *argv, *options)
    assert status == 1 and named in err
    assert fake.asked == []


def test_without_the_operators_token_nothing_is_called(capsys, gateway, tmp_path):
    fake, options = gateway
    missing = str(tmp_path / "none.token")
    status, _, err = run(capsys, "consent", "show", PATIENT, *options[:2], "--token-file", missing)
    assert status == 1
    assert "none.token" in err and "emeuse callers add operator" in err
    assert fake.asked == []
