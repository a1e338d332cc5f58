"""`emeuse consent record|withdraw|show` and `emeuse partner replay`: the partner gateway's
gRPC API, called with the operator's token (docs/operations.md: gRPC callers).

Audited where the platform audits every call: the gateway logs each one (`grpc.called`, with
the caller id and method, never the request), and a consent change is a ConsentChanged event
on the consents topic, its envelope naming the caller.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from emeuse.cli.environment import tool_channel
from emeuse.cli.errors import CliError
from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.partners.v1 import gateway_service_pb2_grpc as api_grpc
from emeuse.runtime.auth import AuthSetupError, bearer, read_token
from emeuse.runtime.envelope import timestamp

OPERATOR_TOKEN_PATH = ".local/secrets/operator.token"  # noqa: S105 (a path, not a secret)
# RecordConsent answers once the gateway applied the change (a replay has --timeout).
CONSENT_TIMEOUT_S = 30.0


def _gateway_default() -> str:
    return f"127.0.0.1:{os.environ.get('EMEUSE_GATEWAY_GRPC_PORT', '50055')}"


def call_gateway(
    args: argparse.Namespace,
    method: str,
    request: Message,
    timeout: float,
    channel: Callable[[str], grpc.Channel] = tool_channel,
) -> Any:
    """`method`'s response, called with the operator's token; CliError with the gateway's
    status and reason otherwise."""
    try:
        token = read_token(Path(args.token_file))
    except AuthSetupError as exc:
        raise CliError(f"{exc} (the operator's token: `emeuse callers add operator`)") from None
    with channel(args.gateway) as opened:
        stub = api_grpc.PartnerGatewayServiceStub(opened)
        try:
            return getattr(stub, method)(request, timeout=timeout, metadata=bearer(token))
        except grpc.RpcError as error:
            code = error.code()
            details = error.details()
            raise CliError(f"gateway {args.gateway}: {code.name}: {details}") from None


def cmd_consent_change(args: argparse.Namespace) -> int:
    granted = args.consent_command == "record"
    if not args.territory:
        raise CliError("no territory: give --territory (52, 54 or 55) or set EMEUSE_TERRITORY")
    request = api.RecordConsentRequest(
        patient_pseudonym=args.patient,
        partner_id=args.partner,
        purpose=args.purpose,
        granted=granted,
        territory=args.territory,
        experiment_id=args.experiment,
    )
    covers_from = getattr(args, "covers_from", None)
    if covers_from:
        request.covers_from.CopyFrom(timestamp(parse_since(covers_from, "--covers-from")))
    response = call_gateway(args, "RecordConsent", request, CONSENT_TIMEOUT_S)
    # The patient's pseudonym is not printed: the operator gave it, a log of this must not.
    state = "recorded" if granted else "withdrawn"
    print(f"consent {state}: {args.partner}/{args.purpose} (event {response.event_id})")
    if covers_from:
        print(f"  covers the patient's data from {covers_from}: a replay --patient backfills it")
    print("  applied by the gateway: the partner's feed follows it from now on")
    return 0


def cmd_consent_show(args: argparse.Namespace) -> int:
    request = api.GetPatientConsentsRequest(patient_pseudonym=args.patient)
    response = call_gateway(args, "GetPatientConsents", request, CONSENT_TIMEOUT_S)
    if args.json:
        for consent in response.consents:
            print(json.dumps(json_format.MessageToDict(consent, preserving_proto_field_name=True)))
        return 0
    if not response.consents:
        print("no consent recorded for this patient")
        return 0
    rows = [("PARTNER", "PURPOSE", "STANDS", "HISTORY")]
    for consent in response.consents:
        history = ", ".join(_change_text(change) for change in consent.history)
        rows.append(
            (consent.partner_id, consent.purpose, "yes" if consent.stands else "no", history)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _change_text(change: api.ConsentChange) -> str:
    when = change.changed_at.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")
    text = f"{'granted' if change.granted else 'withdrawn'} {when}"
    if change.HasField("covers_from"):
        covers = change.covers_from.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")
        text += f" (covering from {covers})"
    return text


def parse_since(text: str, option: str = "--since") -> datetime:
    """An ISO date or date-time, not in the future; one without a zone is UTC."""
    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"{option} {text!r}: expected an ISO date or date-time, e.g. 2027-03-01 or "
            "2027-03-01T08:00:00+01:00"
        ) from None
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    if since > datetime.now(UTC):
        raise CliError(f"{option} {text!r} is in the future")
    return since


def cmd_partner_replay(args: argparse.Namespace) -> int:
    if not args.since and not args.patient:
        raise CliError("give --since (every patient's events), --patient (a backfill), or both")
    request = api.ReplayRequest(partner_id=args.partner_id, patient_pseudonym=args.patient or "")
    since = parse_since(args.since) if args.since else None
    if since is not None:
        request.since.CopyFrom(timestamp(since))
    response = call_gateway(args, "Replay", request, args.timeout)
    # The patient's pseudonym is not printed back (as for consents).
    whose = "one patient's events" if args.patient else "every patient's events"
    start = f"since {since.isoformat()}" if since else "all that the consent covers"
    print(f"{args.partner_id}: replay {response.replay_id}, {whose}, {start}")
    print(
        f"  replayed  {response.events_replayed} event(s) onto its feed "
        "(header emeuse_replay, the envelope's replay_id)"
    )
    print(f"  withheld  {response.events_withheld} event(s): no consent covers them, or none now")
    return 0


def _gateway_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway",
        default=_gateway_default(),
        help="the partner gateway's gRPC address (default 127.0.0.1:EMEUSE_GATEWAY_GRPC_PORT, "
        "50055)",
    )
    parser.add_argument(
        "--token-file",
        default=os.environ.get("EMEUSE_OPERATOR_TOKEN_FILE", OPERATOR_TOKEN_PATH),
        help=f"the operator's gRPC token (env EMEUSE_OPERATOR_TOKEN_FILE, default "
        f"{OPERATOR_TOKEN_PATH})",
    )


def add_consent_commands(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """`emeuse consent record|withdraw|show` (subparsers of the `emeuse` command)."""
    consent = commands.add_parser(
        "consent", help="record, withdraw or show a patient's consents (the partner gateway)"
    )
    actions = consent.add_subparsers(
        dest="consent_command", required=True, parser_class=parser_class
    )
    for action, text in (
        ("record", "record a patient's consent to a partner's purpose"),
        ("withdraw", "withdraw it: the partner's feed stops at once"),
    ):
        change = actions.add_parser(action, help=text)
        change.add_argument("patient", help="the patient's pseudonym (psn-...)")
        change.add_argument("--partner", required=True, help="partner id, e.g. glucoflow")
        change.add_argument("--purpose", required=True, help="one of the partner's purposes")
        change.add_argument(
            "--territory",
            default=os.environ.get("EMEUSE_TERRITORY"),
            help="territory stamped on the ConsentChanged event (env EMEUSE_TERRITORY)",
        )
        change.add_argument(
            "--experiment",
            default=os.environ.get("EMEUSE_EXPERIMENT", "emeuse-platform"),
            help="experiment stamped on the event (env EMEUSE_EXPERIMENT, default emeuse-platform)",
        )
        if action == "record":
            change.add_argument(
                "--covers-from",
                help="ISO date or date-time (no zone: UTC), at most now: the consent covers "
                "the patient's data from then, as the patient agreed (e.g. the start of the "
                "care episode); default: from now",
            )
        _gateway_options(change)
        change.set_defaults(handler=cmd_consent_change)
    show = actions.add_parser("show", help="a patient's consents with their history")
    show.add_argument("patient", help="the patient's pseudonym (psn-...)")
    show.add_argument("--json", action="store_true", help="one JSON object per consent")
    _gateway_options(show)
    show.set_defaults(handler=cmd_consent_show)


def add_partner_replay_command(partner_commands: Any) -> None:
    """`emeuse partner replay ID --since WHEN`."""
    replay = partner_commands.add_parser(
        "replay", help="send a partner's feed again since a date, filtered by consent"
    )
    replay.add_argument("partner_id", metavar="ID")
    replay.add_argument(
        "--since",
        help="ISO date or date-time (no zone: UTC), e.g. 2027-03-01; with --patient it may be "
        "left out: all that the patient's consent covers",
    )
    replay.add_argument(
        "--patient", help="only this patient's events (psn-...): a backfill after a new consent"
    )
    replay.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the replay (300)"
    )
    _gateway_options(replay)
    replay.set_defaults(handler=cmd_partner_replay)
