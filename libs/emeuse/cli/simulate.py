"""`emeuse simulate`: a seeded synthetic territory sent through the platform's interfaces
(docs/operations.md#simulation)."""

from __future__ import annotations

import argparse
import itertools
import os
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError as AIOKafkaError
from rich.console import Console

from emeuse.cli.environment import tool_grpc_tls, tool_kafka_login
from emeuse.cli.errors import CliError
from emeuse.runtime.auth import AuthSetupError, bearer, read_token
from emeuse.runtime.envelope import EXPERIMENT_ID
from emeuse.simulate.batches import TopicUnavailableError
from emeuse.simulate.care_team import CareTeams
from emeuse.simulate.events import Options
from emeuse.simulate.feed_readers import FeedReaders
from emeuse.simulate.lag import PlatformLag
from emeuse.simulate.rollout import DEFAULT_ORDER, RolloutError, parse_order
from emeuse.simulate.run import Plan, run
from emeuse.simulate.send import (
    DEFAULT_TARGETS,
    FileTransport,
    PlatformTransport,
    Tally,
    Transport,
)

RATE_OPTIONS = Options().rates()
RATE_HELP = {
    "critical_rate": "share of readings beyond a critical threshold",
    "warning_rate": "share of readings outside the normal range",
    "gap_share": "share of patients whose devices stop after enrolment (monitoring gaps)",
    "fall_rate": "share of home reports that are falls",
    "panic_rate": "share of home reports that are panic-button presses",
    "wandering_rate": "share of night-time home reports that are an outer door left open",
    "duplicate_rate": "share of records sent twice",
    "late_rate": "share of records sent 1-30 min after they happened",
    "malformed_rate": "share of records that are not valid events (dead-lettered)",
    "acknowledged_share": "share of alerts and incidents care teams acknowledge",
    "missed_visit_rate": "share of home-aide visits nobody checks in to",
    "opt_out_share": "share of prevention enrollees who opt out during the run",
    "no_show_rate": "share of booked consultations recorded as no-shows (the rest completed)",
    "partner_share": "share of diabetes and heart-failure patients using a partner's device, "
    "their readings sent through the partner gateway (0: no partners)",
    "consent_withdrawal_share": "share of partner users withdrawing their consent during the run",
    "receipt_share": "share of messages prevention hands for delivery that get a delivery "
    "partner's receipt (the rest none)",
    "delivery_failed_rate": "share of those receipts saying the delivery failed (prevention "
    "tries the next channel); the rest say delivered",
    "reminder_acted_share": "share of delivered screening and vaccination reminders a lab or "
    "pharmacy reports acted on (a screening done, a dose given) shortly after",
}


def add_simulate_command(commands: Any, bootstrap_option: Any) -> None:
    simulate = commands.add_parser(
        "simulate", help="send a seeded synthetic territory's events (or write them: --dry-run)"
    )
    simulate.add_argument("--seed", type=int, default=1, help="same seed and options, same events")
    simulate.add_argument(
        "--scale", type=float, default=0.01, help="share of the real population (0-1], default 0.01"
    )
    simulate.add_argument("--rate", type=float, default=50.0, help="live events per second")
    simulate.add_argument("--duration", type=float, default=60.0, help="seconds of live events")
    simulate.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="S",
        help="simulated seconds per second (>= 1): the live events say they happened S times "
        "further apart, in the S x --duration before the run ends (a minute at 1440 spans a "
        "day, its nights included); what the services time on the wall clock is not "
        "accelerated: monitoring gaps, acknowledgement and escalation delays, inactivity, "
        "the wait for a wanderer's return, missed visits, consultation slots, reminders",
    )
    simulate.add_argument(
        "--start", help="time of the first live event, ISO 8601 with offset (default: now)"
    )
    simulate.add_argument(
        "--territory",
        action="append",
        choices=["55", "52", "54"],
        help="only this département (repeat for several; default all three)",
    )
    simulate.add_argument(
        "--experiment", default="simulation", help="experiment id of everything (but below)"
    )
    simulate.add_argument(
        "--rollout-at",
        metavar="TIME",
        action="append",
        help="roll the experiment out per territory (--rollout): the first step has it from "
        "the start, the next from this simulated time (ISO 8601 with offset; among the times "
        "the events say, see --speed); give it again for each further step, or once for all; "
        "before it their events belong to --baseline-experiment",
    )
    simulate.add_argument(
        "--rollout",
        metavar="ORDER",
        help="with --rollout-at: the order the experiment reaches the territories in, steps "
        "separated by commas, territories reached together by + (default 55,52+54: Meuse, "
        "then Haute-Marne and Meurthe-et-Moselle together; e.g. 55,52,54 or 54,55+52); two "
        "steps at least",
    )
    simulate.add_argument(
        "--baseline-experiment",
        default="usual-care",
        help="with --rollout-at: the experiment of the later steps' events before it (their "
        "usual care; default usual-care)",
    )
    simulate.add_argument(
        "--acknowledge-within",
        type=int,
        default=1800,
        metavar="S",
        help="seconds care teams and home contacts have to acknowledge (default 1800)",
    )
    simulate.add_argument(
        "--expected-every",
        type=int,
        default=0,
        metavar="S",
        help="every monitored measure's expected interval (default: its prescribed cadence)",
    )
    simulate.add_argument(
        "--visit-missed-after",
        type=int,
        default=1800,
        metavar="S",
        help="seconds after its start a home-aide visit with no check-in is missed (default 1800)",
    )
    for name, value in RATE_OPTIONS.items():
        simulate.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=value,
            metavar="F",
            help=f"{RATE_HELP[name]} (default {value:g})",
        )
    simulate.add_argument("--dry-run", metavar="FILE", help="write the events as JSON lines here")
    simulate.add_argument(
        "--no-setup",
        action="store_true",
        help="send only the live events (enrolled by an earlier run of the same seed and scale)",
    )
    simulate.add_argument(
        "--no-partner-reads",
        action="store_true",
        help="the simulated partners only publish: no partner app reads its feed",
    )
    simulate.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="S",
        help="keep acknowledging alerts and incidents S seconds after the last event",
    )
    simulate.add_argument(
        "--partner-bootstrap",
        default=os.environ.get("EMEUSE_KAFKA_PARTNER_BOOTSTRAP", "127.0.0.1:9094"),
        help="the broker's partner listener the simulated partners send on "
        "(env EMEUSE_KAFKA_PARTNER_BOOTSTRAP)",
    )
    simulate.add_argument(
        "--partner-secrets-dir",
        type=Path,
        default=Path(os.environ.get("EMEUSE_PARTNER_SECRETS_DIR", ".local/secrets/partners")),
        help="where the simulated partners' settings files are (env EMEUSE_PARTNER_SECRETS_DIR)",
    )
    simulate.add_argument(
        "--token-file",
        type=Path,
        default=Path(".local/secrets/operator.token"),
        help="gRPC caller token (default .local/secrets/operator.token, `make up` writes it)",
    )
    for service, target in DEFAULT_TARGETS.items():
        simulate.add_argument(
            f"--{service}", default=target, help=f"{service} gRPC (default {target})"
        )
    bootstrap_option(simulate)


def _time(option: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise CliError(f"{option} needs a UTC offset, e.g. 2026-12-07T08:00:00+01:00")
    return moment


def _rollout(order: str | None, times: list[str]) -> tuple[tuple[str, ...], list[datetime]]:
    try:
        steps = parse_order(order or DEFAULT_ORDER)
    except RolloutError as exc:
        raise CliError(str(exc)) from None
    if len(steps) == 1:
        # Every territory from the start: no later step for a --rollout-at to start.
        raise CliError(
            f"--rollout {order!r} is one step: the experiment would be in every territory "
            "from the start, with no date to roll it out at; separate the steps with commas "
            f"(e.g. {DEFAULT_ORDER}), or give no --rollout and no --rollout-at"
        )
    if order and not times:
        raise CliError("--rollout needs --rollout-at: when the experiment reaches the next step")
    dates = [moment for text in times if (moment := _time("--rollout-at", text))]
    if len(dates) > len(steps) - 1:
        raise CliError(
            f"{len(dates)} --rollout-at for {len(steps) - 1} later step(s) of the rollout"
        )
    if any(later <= earlier for earlier, later in itertools.pairwise(dates)):
        raise CliError("each --rollout-at must be later than the one before")
    return steps, dates


def options_from(args: argparse.Namespace) -> Options:
    start = _time("--start", args.start)
    order, dates = _rollout(args.rollout, args.rollout_at or [])
    rollout_at = dates[0] if dates else None
    for option, experiment in (
        ("--experiment", args.experiment),
        ("--baseline-experiment", args.baseline_experiment),
    ):
        if not EXPERIMENT_ID.fullmatch(experiment):
            raise CliError(
                f"{option} {experiment!r} is not an experiment id ([a-z0-9][a-z0-9._-]*)"
            )
    if rollout_at and args.baseline_experiment == args.experiment:
        raise CliError("--baseline-experiment must differ from --experiment")
    if not 0 < args.scale <= 1:
        raise CliError("--scale must be above 0 and at most 1")
    if args.rate <= 0 or args.duration < 0:
        raise CliError("--rate must be above 0 and --duration at least 0")
    if args.speed < 1:
        raise CliError("--speed must be at least 1 (the events cannot say they are in the future)")
    rates = {name: getattr(args, name) for name in RATE_OPTIONS}
    if any(not 0 <= value <= 1 for value in rates.values()):
        raise CliError("every --*-rate and --gap-share must be between 0 and 1")
    if args.acknowledge_within < 1 or args.expected_every < 0 or args.visit_missed_after < 1:
        raise CliError(
            "--acknowledge-within and --visit-missed-after must be at least 1 s, "
            "--expected-every at least 0"
        )
    return Options(
        seed=args.seed,
        scale=args.scale,
        rate=args.rate,
        duration=args.duration,
        speed=args.speed,
        start=start,
        territories=tuple(args.territory or ()),
        experiment=args.experiment,
        rollout=order,
        rollout_at=rollout_at,
        rollout_then=tuple(dates[1:]),
        baseline_experiment=args.baseline_experiment,
        acknowledge_within_s=args.acknowledge_within,
        expected_every_s=args.expected_every,
        visit_missed_after_s=args.visit_missed_after,
        **rates,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    options = options_from(args)
    console = Console()
    transport: Transport
    if args.dry_run:
        with Path(args.dry_run).open("w") as out:
            # Nothing to pace: the file gets every event at once, with the times it would.
            run(options, FileTransport(out), console, sleep=lambda _: None)
        return 0
    try:
        auth = bearer(read_token(args.token_file))
    except (AuthSetupError, OSError) as exc:
        raise CliError(f"{exc} (run `make up`, or give --token-file)") from None
    targets = {service: getattr(args, service) for service in DEFAULT_TARGETS}
    try:
        transport = PlatformTransport(
            args.bootstrap,
            targets,
            auth,
            options.experiment,
            partner_bootstrap=args.partner_bootstrap,
            partner_secrets=args.partner_secrets_dir,
            tls=tool_grpc_tls(),
            login=tool_kafka_login(),
            baseline=options.baseline_experiment if options.rollout_at else "",
        )
    except (AIOKafkaError, OSError) as exc:
        raise CliError(f"cannot reach Kafka at {args.bootstrap}: {type(exc).__name__}") from None

    def care_teams(people: set[str], tally: Tally) -> CareTeams:
        return CareTeams(
            args.bootstrap, options, people, transport, tally, login=tool_kafka_login()
        )

    def partner_apps(run_plan: Plan, tally: Tally) -> FeedReaders:
        return FeedReaders(
            run_plan.partners,
            run_plan.users,
            run_plan.withdrawn,
            args.partner_secrets_dir,
            tally,
            experiment=options.experiment,
        )

    tally: Tally | None = None
    try:
        tally = run(
            options,
            transport,
            console,
            responders=care_teams,
            linger_s=args.linger,
            setup=not args.no_setup,
            lag=PlatformLag(args.bootstrap, login=tool_kafka_login()),
            feed_readers=None if args.no_partner_reads else partner_apps,
        )
    except TopicUnavailableError as exc:
        raise CliError(str(exc)) from None
    finally:
        printed = Counter(tally.failed) if tally is not None else Counter()
        transport.close()
    # Calls still under way when the summary was printed may fail as the transport closes:
    # said here, so the exit status never contradicts what was printed.
    assert tally is not None
    late = Counter(tally.failed)
    late.subtract(printed)
    if +late:
        lines = ", ".join(f"{kind} {count}" for kind, count in sorted((+late).items()))
        console.print(f"failed after the summary, while closing: {lines}")
    return 1 if tally.failed else 0
