"""emeuse: the platform's command-line tool (schema-aware, like kcat).

  emeuse topics [--json]            the topic registry
  emeuse topics create              create missing registry topics (before workers start)
  emeuse publish TYPE --json '{}'   validate a proto3-JSON event and send it with full headers
  emeuse tail TOPIC                 one decoded event per line (--config: a partner's own)
  emeuse health HOST:PORT...        gRPC health of services (--wait S to wait for SERVING)
  emeuse callers add NAME           give a gRPC caller a new token (file) and allow it
  emeuse partner add|list|grant|remove   partners: registry, Kafka credential and ACLs
  emeuse partner run MODULE:APP     run a partner's PartnerApp on its feed (docs/partners.md)
  emeuse deploy render [--check]    write deploy/k8s/ from the registries (docs/operations.md)
  emeuse evaluate --experiment X --territory 55 --from 2026-01 --to 2026-12 --out DIR
        [--period month|week]       an experiment's indicators as CSV and PNG (docs/evaluation.md)
  emeuse simulate                   a seeded synthetic territory's events (--dry-run: to a file)
  emeuse partner replay ID --since D   send a partner's feed again (gateway gRPC, operator token)
  emeuse partner status ID          grants, consents, feed lag, refusals (--config: a partner's own)
  emeuse consent record|withdraw|show PATIENT   patients' consents (gateway gRPC, operator token)

Every command takes --bootstrap (default: EMEUSE_KAFKA_BOOTSTRAP, else the local broker's
SASL_SSL listener 127.0.0.1:9095). The tools connect as `make up`'s services do: mutual TLS
to gRPC, SASL_SSL as emeuse-cli to Kafka, with .local/secrets/ (docs/security.md).
Errors are one line on stderr and a non-zero exit status, never a traceback. A reader that
stops early (`emeuse tail ... | head`) ends the command quietly, status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from emeuse import partner_credentials
from emeuse.cli import kafka
from emeuse.cli.audit import add_audit_command, cmd_audit
from emeuse.cli.closed_stdout import StdoutClosed, watched
from emeuse.cli.deploy import add_deploy_command, cmd_deploy
from emeuse.cli.environment import tool_bootstrap
from emeuse.cli.errors import CliError
from emeuse.cli.evaluate import add_evaluate_command, cmd_evaluate
from emeuse.cli.health import check_health
from emeuse.cli.operator_calls import add_consent_commands, add_partner_replay_command
from emeuse.cli.partner_admin import add_partner_admin_commands
from emeuse.cli.partner_run import add_partner_run_command
from emeuse.cli.partner_status import add_partner_status_command
from emeuse.cli.publish import build_event
from emeuse.cli.records import describe, describe_unreadable, partner_topic
from emeuse.cli.simulate import add_simulate_command, cmd_simulate
from emeuse.kernel.raw_records import read_raw_record
from emeuse.partners import PartnerIdError, dead_letter_topic, feed_topic
from emeuse.registry import TOPICS, TopicSpec, UnknownTopicError, by_name
from emeuse.runtime.auth import (
    ROLES,
    AuthSetupError,
    add_caller,
    read_caller_book,
    remove_caller,
)
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.settings import SettingsError, parse_bootstrap, positive_int
from emeuse.runtime.unreadable import RawReader, Unreadable, poll

CLI_SOURCE = "emeuse/cli"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, like argparse but no usage dump
        print(
            f"emeuse: error: {message} (see emeuse {self.prog.split(' ', 1)[-1]} --help)",
            file=sys.stderr,
        )
        raise SystemExit(2)


def _bootstrap_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap",
        default=tool_bootstrap(),
        help="Kafka bootstrap servers host:port[,host:port] (env EMEUSE_KAFKA_BOOTSTRAP)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="emeuse", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    topics = commands.add_parser("topics", help="list the topic registry, or create its topics")
    topics.add_argument("action", nargs="?", choices=["list", "create"], default="list")
    topics.add_argument("--json", action="store_true", help="one JSON object per topic")
    topics.add_argument(
        "--replication-factor",
        default=os.environ.get("EMEUSE_REPLICATION_FACTOR", "1"),
        help="replication factor of created topics (env EMEUSE_REPLICATION_FACTOR, default 1)",
    )
    _bootstrap_option(topics)

    publish = commands.add_parser("publish", help="send one event given as proto3 JSON")
    publish.add_argument("type", help="full message name, e.g. emeuse.chronic.v1.ReadingRecorded")
    publish.add_argument(
        "--json", required=True, dest="json_text", help="the message in proto3 JSON form"
    )
    publish.add_argument(
        "--subject", help="pseudonym of the person (default: the event's key field)"
    )
    publish.add_argument(
        "--territory",
        default=os.environ.get("EMEUSE_TERRITORY"),
        help="département code 55, 52 or 54 (env EMEUSE_TERRITORY)",
    )
    publish.add_argument(
        "--experiment",
        default=os.environ.get("EMEUSE_EXPERIMENT"),
        help="experiment id (env EMEUSE_EXPERIMENT)",
    )
    publish.add_argument("--key", help="record key (default: the event's key field)")
    publish.add_argument("--topic", help="topic, when the type is on several")
    publish.add_argument("--source", default=CLI_SOURCE, help="ce_source (default emeuse/cli)")
    _bootstrap_option(publish)

    tail = commands.add_parser("tail", help="print a topic's events, one JSON line each")
    tail.add_argument(
        "topic",
        help="a registry topic or a partner's; with --config: feed, dead-letter or the full name",
    )
    tail.add_argument(
        "--config",
        default=os.environ.get("EMEUSE_PARTNER_CONFIG"),
        help="a partner's settings file: read its own topics with its credential "
        "(env EMEUSE_PARTNER_CONFIG; --bootstrap is then the file's)",
    )
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, help="stop after N events")
    tail.add_argument("--timeout", type=float, help="stop after S seconds without a new event")
    tail.add_argument(
        "--json",
        action="store_true",
        help="compact JSON, no spaces (default: JSON with spaces, same fields)",
    )
    _bootstrap_option(tail)

    health = commands.add_parser("health", help="ask services' gRPC health service")
    health.add_argument("targets", nargs="+", help="host:port of each service's gRPC server")
    health.add_argument("--wait", type=float, default=0.0, help="wait up to S seconds for SERVING")
    _bootstrap_option(health)

    callers = commands.add_parser("callers", help="manage who may call the gRPC APIs")
    callers.add_argument("action", choices=["add", "remove", "list"])
    callers.add_argument(
        "name", nargs="?", help="caller id, e.g. chronic, operator, partner-glucomind, gp-0042"
    )
    callers.add_argument(
        "--role",
        choices=ROLES,
        help="what the caller may call (docs/security.md); default: service for a service's"
        " name, operator for `operator`",
    )
    callers.add_argument("--member", default="", help="care-team: the member_id care plans name")
    callers.add_argument(
        "--territory", default="", help="coordinator: the only territory it sees (52, 54, 55)"
    )
    callers.add_argument(
        "--callers-file",
        type=Path,
        default=Path(os.environ.get("EMEUSE_GRPC_CALLERS_FILE", ".local/secrets/grpc-callers")),
    )
    callers.add_argument(
        "--token-file", type=Path, help="default: next to the callers file, NAME.token"
    )
    _bootstrap_option(callers)

    partner = commands.add_parser(
        "partner", help="manage partners (registry, credentials, ACLs) and run partner apps"
    )
    # Each `partner` subcommand names its handler (set_defaults(handler=...)).
    partner_commands = partner.add_subparsers(
        dest="partner_command", required=True, parser_class=_Parser
    )
    add_partner_admin_commands(partner_commands)
    add_partner_run_command(partner_commands)
    add_deploy_command(commands)
    add_evaluate_command(commands)
    add_simulate_command(commands, _bootstrap_option)
    add_partner_replay_command(partner_commands)
    add_partner_status_command(partner_commands)
    add_consent_commands(commands, _Parser)
    add_audit_command(commands, _bootstrap_option)
    return parser


def cmd_callers(args: argparse.Namespace) -> int:
    """Services read the callers file again within a second of a change: no restart."""
    try:
        if args.action == "list":
            for caller in sorted(
                read_caller_book(args.callers_file).values(), key=lambda c: c.caller_id
            ):
                print(" ".join([caller.caller_id, *(caller.line_fields() or ["(no role)"])]))
            return 0
        if not args.name:
            raise CliError(f"callers {args.action}: name the caller")
        if args.action == "remove":
            if not remove_caller(args.name, args.callers_file):
                raise CliError(f"caller {args.name} is not in {args.callers_file}")
            print(f"{args.name}: removed from {args.callers_file}; its token no longer works")
            return 0
        token_file = args.token_file or args.callers_file.parent / f"{args.name}.token"
        add_caller(
            args.name,
            args.callers_file,
            token_file,
            args.role or "",
            member=args.member,
            territory=args.territory,
        )
    except (AuthSetupError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"{args.name}: token in {token_file}, allowed in {args.callers_file}")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    statuses = check_health(args.targets, wait_s=args.wait)
    for target, status in statuses.items():
        print(f"{status:12} {target}")
    if any(status != "SERVING" for status in statuses.values()):
        raise CliError("not every service is SERVING")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    if args.action == "create":
        factor = positive_int("--replication-factor", str(args.replication_factor))
        for name, state in kafka.create_topics(args.bootstrap, factor):
            print(f"{state:8} {name}")
        return 0
    if args.json:
        for spec in TOPICS:
            print(
                json.dumps(
                    {
                        "name": spec.name,
                        "type": spec.type_name,
                        "key": spec.key,
                        "partitions": spec.partitions,
                        "cleanup": "compact" if spec.compacted else "delete",
                        "retention_days": spec.retention_days,
                        "owner": spec.owner,
                        "description": spec.description,
                    }
                )
            )
        return 0
    rows = [("TOPIC", "TYPE", "KEY", "PARTS", "KEPT", "OWNER")]
    for spec in TOPICS:
        kept = kept_for(spec)
        rows.append((spec.name, spec.type_name, spec.key, str(spec.partitions), kept, spec.owner))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def kept_for(spec: TopicSpec) -> str:
    """How long the topic keeps a record, as `emeuse topics` shows it."""
    if spec.compacted:
        return "compacted"
    return "forever" if spec.retention_days is None else f"{spec.retention_days}d"


def cmd_publish(args: argparse.Namespace) -> int:
    outgoing = build_event(
        event_type=args.type,
        json_text=args.json_text,
        subject=args.subject,
        territory=args.territory,
        experiment=args.experiment,
        key=args.key,
        topic=args.topic,
        source=args.source,
    )
    producer = kafka.producer(args.bootstrap)
    with kafka.kafka_errors(args.bootstrap):
        key = outgoing.key.encode() if outgoing.key else None
        hashed = outgoing.spec.partition_key(key, outgoing.message)
        future = producer.send(
            outgoing.spec.name,
            key=key,
            value=outgoing.value,
            headers=outgoing.headers,
            # A topic partitioned by a field (consents: the patient) is sent where it hashes.
            partition=(
                expected_partition(hashed, outgoing.spec.partitions)
                if outgoing.spec.partition_by and hashed
                else None
            ),
        )
        future.get(timeout=15)
        producer.close(timeout=5)
    print(outgoing.envelope.event_id)
    return 0


def _partners_topic(config: partner_credentials.ClientConfig, asked: str) -> str:
    """The partner's own topic `asked` names (feed, dead-letter or the full name); CliError
    for any other: its credential reads nothing else."""
    partner_id = config.username.removeprefix("partner-")
    try:
        readable = {"feed": feed_topic(partner_id), "dead-letter": dead_letter_topic(partner_id)}
    except PartnerIdError:
        raise CliError(f"{config.username!r} is not a partner's user") from None
    topic = readable.get(asked, asked)
    if topic not in readable.values():
        raise CliError(
            f"partner {partner_id} reads only its feed and dead letters "
            f"({', '.join(readable.values())}); not {asked}"
        )
    return topic


def cmd_tail(
    args: argparse.Namespace,
    connect: Callable[[str], KafkaConsumer] = kafka.consumer,
    connect_partner: Callable[
        [partner_credentials.ClientConfig], KafkaConsumer
    ] = kafka.partner_consumer,
) -> int:
    if args.max is not None and args.max < 1:
        raise CliError("--max must be at least 1")
    if args.config:
        try:
            config = partner_credentials.read(Path(args.config))
        except partner_credentials.CredentialsFileError as exc:
            raise CliError(str(exc)) from None
        topic, where = _partners_topic(config, args.topic), config.bootstrap
        consumer = connect_partner(config)
        # The record the client cannot decode is re-read raw: with the same login.
        read_raw: RawReader = partial(read_raw_record, login=config.login_options())
    else:
        topic, where = args.topic, args.bootstrap
        if partner_topic(topic) is None:
            try:
                by_name(topic)
            except UnknownTopicError as exc:
                raise CliError(f"{exc} (nor a partner's topic)") from None
        consumer = connect(args.bootstrap)
        read_raw = read_raw_record
    with kafka.kafka_errors(where):
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            consumer.close()
            raise CliError(
                f"topic {topic} does not exist on {where}"
                + ("" if args.config else "; run `emeuse topics create`")
            )
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if args.from_beginning:
            consumer.seek_to_beginning(*assigned)
        else:
            consumer.seek_to_end(*assigned)
        try:
            for r in islice(follow(consumer, where, args.timeout, read_raw=read_raw), args.max):
                if isinstance(r, Unreadable):
                    line = describe_unreadable(r)
                else:
                    line = describe(r.topic, r.partition, r.offset, r.key, r.value, r.headers)
                print(
                    json.dumps(line, separators=(",", ":"))
                    if args.json
                    else json.dumps(line, ensure_ascii=False),
                    flush=True,
                )
        except KeyboardInterrupt:
            pass
        finally:
            consumer.close()
    return 0


def follow(
    consumer: KafkaConsumer,
    bootstrap: str,
    timeout: float | None,
    *,
    read_raw: RawReader = read_raw_record,
) -> Iterator[ConsumerRecord | Unreadable]:
    """The assigned partitions' records one by one, whichever partitions a poll returns, and
    in their place those the client cannot decode (then stepped over, read raw by
    `read_raw`, logged in as the consumer is); ends after `timeout` seconds without a record
    (never when timeout is None)."""
    last_seen = time.monotonic()
    while timeout is None or time.monotonic() - last_seen <= timeout:
        polled, unreadable = poll(consumer, bootstrap.split(","), timeout_ms=200, read_raw=read_raw)
        for records in polled.values():
            for record in records:
                yield record
                last_seen = time.monotonic()
        for record in unreadable:
            yield record
            last_seen = time.monotonic()


def cmd_subcommand(args: argparse.Namespace) -> int:
    """`partner` and `consent`: each subcommand names its handler."""
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


COMMANDS = {
    "topics": cmd_topics,
    "publish": cmd_publish,
    "tail": cmd_tail,
    "health": cmd_health,
    "callers": cmd_callers,
    "deploy": cmd_deploy,
    "evaluate": cmd_evaluate,
    "simulate": cmd_simulate,
    "partner": cmd_subcommand,
    "consent": cmd_subcommand,
    "audit": cmd_audit,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        with watched():
            return _run(argv)
    except StdoutClosed:
        return 0


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "bootstrap", None) is not None:  # `partner run` reads its settings
            parse_bootstrap("--bootstrap", args.bootstrap)
        return COMMANDS[args.command](args)
    except SettingsError as exc:
        print(f"emeuse: error: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"emeuse: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
