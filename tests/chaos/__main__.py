"""python -m tests.chaos --seed N --rounds R --readings K [--short] [--load simulate]: seeded
rounds of faults against the broker at EMEUSE_KAFKA_BOOTSTRAP (scripts/chaos.sh starts one);
exit 1 when a round loses or duplicates an output or leaves an input unprocessed."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.cluster import Broker
from tests.chaos.reference import rounds_against_reference
from tests.chaos.report import table
from tests.chaos.round import RoundConfig, run_round, short_round
from tests.chaos.scenarios import SCENARIOS
from tests.chaos.simulated import SCALE, SIMULATED

FULL_READINGS = 100_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="rounds, seeds N, N+1, ...")
    parser.add_argument("--readings", type=int, default=None, help="stream records per round")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--stream-seconds", type=float, default=None)
    parser.add_argument(
        "--full", action="store_true", help=f"the issue's size: {FULL_READINGS:,} readings"
    )
    parser.add_argument("--short", action="store_true", help="one of each fault, small stream")
    parser.add_argument(
        "--no-broker-faults",
        action="store_true",
        help="never kill the broker (a broker shared with others, as make test's)",
    )
    parser.add_argument(
        "--services", default=",".join(SCENARIOS), help=f"of {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--load",
        choices=("workloads", "simulate"),
        default="workloads",
        help="the stream: the scenarios' hand-built workloads, or the simulator's records "
        f"checked against a fault-free reference round (for {', '.join(SIMULATED)})",
    )
    parser.add_argument(
        "--scale", type=float, default=SCALE, help="with --load simulate: the territory's scale"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="logs and data of instances")
    args = parser.parse_args(argv)
    services = args.services.split(",")
    if args.load == "simulate" and (others := [s for s in services if s not in SIMULATED]):
        parser.error(f"--load simulate: no simulated load for {', '.join(others)} yet")

    bootstrap = os.environ.get("EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    broker = None if args.no_broker_faults else Broker()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="emeuse-chaos-"))
    failed = []
    for n in range(args.rounds):
        seed = args.seed + n
        for service in services:
            config = config_for(args, seed)
            workdir = root / f"{service}-seed{seed}"
            if args.load == "simulate":
                reports = rounds_against_reference(
                    config, service, bootstrap, workdir, broker, args.scale
                )
            else:
                reports = iter([run_round(config, SCENARIOS[service], bootstrap, workdir, broker)])
            passed = []
            for report in reports:  # each printed once it is over
                print(table(report), flush=True)
                print(f"   logs: {report.workdir}", flush=True)
                passed.append(report.ok)
            # Against a reference: both rounds ran (a failed reference stops it) and passed.
            if not all(passed) or len(passed) < (2 if args.load == "simulate" else 1):
                failed.append(f"{service} seed {seed}")
    print(
        f"\nchaos: {args.rounds} round(s), "
        + (f"FAILED: {', '.join(failed)}" if failed else "all passed"),
        flush=True,
    )
    return 1 if failed else 0


def config_for(args: argparse.Namespace, seed: int) -> RoundConfig:
    if args.short and not (args.readings or args.patients or args.stream_seconds):
        return short_round(seed, broker_faults=not args.no_broker_faults)
    if args.short:
        readings, patients, seconds = 1500, 30, 50.0
    elif args.full:
        readings, patients, seconds = FULL_READINGS, 1000, 300.0
    else:
        readings, patients, seconds = 20_000, 300, 120.0
    return RoundConfig(
        seed=seed,
        patients=args.patients or patients,
        readings=args.readings or readings,
        instances=args.instances,
        stream_s=args.stream_seconds or seconds,
        short=args.short,
        broker_faults=not args.no_broker_faults,
    )


def _exit_on_signal(signum: int, _frame: object) -> None:
    # SystemExit unwinds like an error: each round's finally stops the instances it started.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    started = time.monotonic()
    status = main()
    print(f"chaos: {time.monotonic() - started:.0f} s", file=sys.stderr)
    sys.exit(status)
