"""`emeuse partner status ID`: what a partner may do and how it is doing.

Its grants (the registry), how many patients' consents stand for it (the consents topic,
compacted: the last change of each patient, partner and purpose), the lag of each of its
consumer groups on its feed, and its refusals of the last hours, by who refused (the
gateway's inbound checks, a service after admission, its own app). An operator runs it on
the platform's listener; a partner runs it with its settings file (`--config`) and sees
what its credential reads: its groups and its dead letters (grants from the file's lines).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from emeuse import partner_credentials, partners
from emeuse.cli import kafka
from emeuse.cli.environment import tool_bootstrap
from emeuse.cli.errors import CliError
from emeuse.cli.partner_admin import read_registrations
from emeuse.partners.v1.partners_pb2 import ConsentChanged
from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from emeuse.registry import CONSENT_CHANGED
from emeuse.runtime import envelope as env

READ_TO_END_S = 20.0
# A gap this small is read through to count records, not offsets (transaction markers
# take offsets too: a caught-up group is one marker behind the end of each partition).
COUNTED_GAP = 10_000


@dataclass
class GroupLag:
    group: str
    # Records on the feed after the group's commit; partitions never committed count whole.
    lag: int
    partitions: dict[int, int] = field(default_factory=dict)


@dataclass
class Status:
    partner_id: str
    active: bool | None  # None: not known (a partner's credential cannot read the registry)
    grants: dict[str, list[str]]
    consents: dict[str, int] | None  # None: not visible with a partner's credential
    groups: list[GroupLag]
    refusals_since: str
    refusals: dict[str, int]


def standing_consents(changes: Iterable[ConsentChanged], partner_id: str) -> dict[str, int]:
    """Patients with a standing consent to the partner (for any of its purposes), and the
    standing consents (per patient and purpose); `changes` in the topic's order."""
    latest: dict[tuple[str, str], bool] = {}
    for change in changes:
        if change.partner_id == partner_id:
            latest[(change.patient_pseudonym, change.purpose)] = change.granted
    standing = [key for key, granted in latest.items() if granted]
    return {"patients": len({patient for patient, _ in standing}), "consents": len(standing)}


def refusal_counts(letters: Iterable[MessageDeadLettered], partner_id: str) -> dict[str, int]:
    """Events refused, by who refused: `gateway` (inbound checks), a service's name (after
    admission, reported back), `app` (the partner's own SDK set a record aside). An event
    refused twice by the same one (inbound checks are at least once) counts once."""
    counted: Counter[str] = Counter()
    seen: set[tuple[str, bytes]] = set()
    for letter in letters:
        who = "app" if letter.consumer == f"partner/{partner_id}" else letter.consumer or "unknown"
        event_id = letter.original_headers.get(env.H_ID)
        if event_id:
            if (who, event_id) in seen:
                continue
            seen.add((who, event_id))
        counted[who] += 1
    return dict(sorted(counted.items()))


def _read(consumer: KafkaConsumer, starts: dict[TopicPartition, int]) -> Iterator[Any]:
    """The records from `starts` to the partitions' ends (as they were when asked)."""
    ends = consumer.end_offsets(list(starts))
    todo = {tp: end for tp, end in ends.items() if starts[tp] < end}
    if not todo:
        return
    consumer.assign(list(todo))
    for tp in todo:
        consumer.seek(tp, starts[tp])
    deadline = time.monotonic() + READ_TO_END_S
    while any(consumer.position(tp) < end for tp, end in todo.items()):
        if time.monotonic() > deadline:
            raise CliError(f"could not read {sorted({tp.topic for tp in todo})} to the end")
        for tp, records in consumer.poll(timeout_ms=200).items():
            yield from (r for r in records if r.offset < todo[tp])


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        raise CliError(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in sorted(found)]


def read_consents(consumer: KafkaConsumer) -> Iterator[ConsentChanged]:
    partitions = _partitions(consumer, CONSENT_CHANGED.name)
    starts = consumer.beginning_offsets(partitions)
    for record in _read(consumer, starts):
        try:
            yield ConsentChanged.FromString(record.value or b"")
        except DecodeError:
            continue  # set aside by the gateway already: not a consent


def read_refusals(consumer: KafkaConsumer, topic: str, since: datetime) -> list[Any]:
    partitions = _partitions(consumer, topic)
    found = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
    ends = consumer.end_offsets(partitions)
    starts = {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in partitions}
    letters = []
    for record in _read(consumer, starts):
        try:
            letters.append(MessageDeadLettered.FromString(record.value or b""))
        except DecodeError:
            letters.append(MessageDeadLettered(consumer="unknown"))
    return letters


def group_lags(admin: KafkaAdminClient, consumer: KafkaConsumer, partner_id: str) -> list[GroupLag]:
    """Each of the partner's consumer groups that committed on its feed, and its lag."""
    feed = partners.feed_topic(partner_id)
    prefix = partners.consumer_group_prefix(partner_id)
    partitions = _partitions(consumer, feed)
    ends = consumer.end_offsets(partitions)
    starts = consumer.beginning_offsets(partitions)
    # kafka-python 3: each group a dict ({"group_id": ..., "protocol_type": ...}).
    listed = (g.get("group_id", "") for g in admin.list_groups())
    groups = sorted(g for g in listed if g.startswith(prefix))
    lags = []
    for group in groups:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        if not any(tp.topic == feed for tp in offsets):
            continue  # a group of the partner's that does not read its feed
        per_partition = {}
        for tp in partitions:
            meta = offsets.get(tp)
            committed = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            gap = max(0, ends[tp] - committed)
            if 0 < gap <= COUNTED_GAP:
                gap = sum(1 for _ in _read(consumer, {tp: committed}))
            per_partition[tp.partition] = gap
        lags.append(GroupLag(group, sum(per_partition.values()), per_partition))
    return lags


def cmd_partner_status(args: argparse.Namespace) -> int:
    partner_id = args.partner_id
    try:
        partners.check_partner_id(partner_id)
    except partners.PartnerIdError as exc:
        raise CliError(str(exc)) from None
    if args.hours <= 0:
        raise CliError("--hours must be above 0")
    since = datetime.now(UTC) - timedelta(hours=args.hours)
    config = None
    if args.config:
        try:
            config = partner_credentials.read(Path(args.config))
        except partner_credentials.CredentialsFileError as exc:
            raise CliError(str(exc)) from None
    where = config.bootstrap if config else args.bootstrap
    consumer = kafka.partner_consumer(config) if config else kafka.consumer(args.bootstrap)
    with kafka.kafka_errors(where):
        try:
            admin = kafka.partner_admin(config) if config else kafka.admin(args.bootstrap)
            try:
                groups = group_lags(admin, consumer, partner_id)
            finally:
                admin.close()
            letters = read_refusals(consumer, partners.dead_letter_topic(partner_id), since)
            consents = None if config else standing_consents(read_consents(consumer), partner_id)
        finally:
            consumer.close()
    if config:
        active = None
        grants = {
            "publishes": list(config.publishes or ()),
            "experiments": list(config.experiments or ()),
        }
    else:
        registration = read_registrations(args.bootstrap).get(partner_id)
        if registration is None:
            raise CliError(f"no partner {partner_id!r} in the registry (`emeuse partner list`)")
        active = registration.active
        grants = {
            "purposes": list(registration.purposes),
            "reads": list(registration.readable_event_types),
            "publishes": list(registration.publishable_event_types),
            "experiments": list(registration.experiments),
        }
    status = Status(
        partner_id,
        active,
        grants,
        consents,
        groups,
        since.isoformat(timespec="seconds"),
        refusal_counts(letters, partner_id),
    )
    if args.json:
        print(json.dumps(asdict(status)))
    else:
        print(render(status))
    return 0


def render(status: Status) -> str:
    lines = [status.partner_id + ("" if status.active is None else f"  active: {status.active}")]
    for label, values in status.grants.items():
        lines.append(f"  {label:<11} {', '.join(values) or '-'}")
    if status.consents is None:
        lines.append("  consents    not visible with a partner's credential: ask operations")
    else:
        lines.append(
            f"  consents    {status.consents['patients']} patient(s) consent now "
            f"({status.consents['consents']} standing consent(s) by purpose)"
        )
    if not status.groups:
        lines.append("  feed lag    no consumer group has committed on the feed yet")
    for group in status.groups:
        lines.append(f"  feed lag    {group.group}: {group.lag} record(s) behind")
    total = sum(status.refusals.values())
    shown = ", ".join(f"{who} {count}" for who, count in status.refusals.items())
    lines.append(
        f"  refusals    {total} since {status.refusals_since}" + (f" ({shown})" if shown else "")
    )
    return "\n".join(lines)


def add_partner_status_command(partner_commands: Any) -> None:
    """`emeuse partner status ID [--config FILE] [--hours H] [--json]`."""
    status = partner_commands.add_parser(
        "status", help="a partner's grants, consents, feed lag and recent refusals"
    )
    status.add_argument("partner_id", metavar="ID")
    status.add_argument(
        "--hours", type=float, default=24.0, help="count refusals of the last H hours (24)"
    )
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.add_argument(
        "--config",
        default=os.environ.get("EMEUSE_PARTNER_CONFIG"),
        help="a partner's settings file: its own view, with its credential "
        "(env EMEUSE_PARTNER_CONFIG; --bootstrap is then the file's)",
    )
    status.add_argument(
        "--bootstrap",
        default=tool_bootstrap(),
        help="the platform's Kafka bootstrap servers (env EMEUSE_KAFKA_BOOTSTRAP)",
    )
    status.set_defaults(handler=cmd_partner_status)
