"""Move a service's state to the partitions its tables now hash to (an operator's one-off).

Access's agenda used to be partitioned by the territory code alone ("52", "54", "55": all
on partition 0 of 6); it is now by "agenda-<territory>" (emeuse.registry.AGENDA_PARTITION),
and evaluation's requests waiting follow it. State kept before the change sits in the
changelog partition of the old hash. With the service stopped and its inputs drained, this
copies each live entry whose partition changed to its new partition of the changelog and
writes a tombstone in the old one, in one transaction. On start, each partition's store
catches up from its checkpoint: the new partitions read the entries, the old ones drop them.

    python -m services.access.repartition --bootstrap 127.0.0.1:9092 --service access
    python -m services.access.repartition --bootstrap 127.0.0.1:9092 --service evaluation

`--dry-run` only counts. Run again, it finds nothing to move.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from emeuse.cli.environment import tool_kafka_login
from emeuse.kernel.declare import TableSpec
from emeuse.kernel.store import split_changelog_key
from emeuse.registry import PARTITIONS, TopicSpec
from emeuse.runtime import kafka_clients
from emeuse.runtime.codec import expected_partition


@dataclass(frozen=True)
class Move:
    """A changelog entry to copy from one partition to another (value as stored)."""

    key: bytes
    value: bytes
    source: int
    target: int


def moves(
    records: Iterable[tuple[int, bytes, bytes | None]],
    tables: Sequence[TableSpec],
    partitions: int,
) -> list[Move]:
    """The live entries (last value per key and partition, in changelog order) of the
    given tables that are not on the partition their key now hashes to."""
    last: dict[tuple[int, bytes], bytes | None] = {}
    for partition, key, value in records:
        last[(partition, key)] = value
    by_name = {table.name: table for table in tables}
    found = []
    for (partition, key), value in last.items():
        table, entry = split_changelog_key(key)
        spec = by_name.get(table)
        if value is None or spec is None:
            continue
        target = expected_partition(spec.partition_key(entry).encode(), partitions)
        if target != partition:
            found.append(Move(key, value, partition, target))
    return found


class NotSafe(RuntimeError):
    """The service still runs, or has inputs left to handle: state would move under it."""


def group_of(bootstrap: str, group: str) -> tuple[list[Any], dict[TopicPartition, Any]]:
    """The group's members and committed offsets; a coordinator not there yet (a broker
    just started) is waited for a little."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **kafka_clients.client_options())
    try:
        for attempt in itertools.count():
            try:
                members = admin.describe_groups([group]).get(group, {}).get("members") or []
                return members, admin.list_group_offsets(group).get(group, {})
            except KafkaError as error:
                if not error.retriable or attempt >= 30:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")
    finally:
        admin.close()


def check_stopped_and_drained(bootstrap: str, group: str, inputs: Sequence[TopicSpec]) -> None:
    members, committed = group_of(bootstrap, group)
    if members:
        raise NotSafe(f"{group} has {len(members)} member(s): stop every instance")
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka_clients.client_options(),
    )
    try:
        tps = [TopicPartition(s.name, p) for s in inputs for p in range(s.partitions)]
        ends = consumer.end_offsets(tps)
        for tp in tps:
            start = committed[tp].offset if tp in committed else 0
            if start >= ends[tp]:
                continue
            consumer.assign([tp])
            consumer.seek(tp, start)
            if consumer.poll(timeout_ms=2000).get(tp):
                raise NotSafe(f"{tp.topic}[{tp.partition}] has records not handled yet")
    finally:
        consumer.close()


def read_changelog(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka_clients.client_options(),
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        found: list[tuple[int, bytes, bytes | None]] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for tp, batch in consumer.poll(timeout_ms=1000).items():
                found.extend((tp.partition, r.key or b"", r.value) for r in batch)
        return found
    finally:
        consumer.close()


async def write_moves(bootstrap: str, topic: str, found: Sequence[Move], app_id: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"{app_id}-repartition",
        **kafka_clients.client_options(),
    )
    await producer.start()
    try:
        async with producer.transaction():
            for move in found:
                await producer.send(topic, move.value, key=move.key, partition=move.target)
                await producer.send(topic, None, key=move.key, partition=move.source)
    finally:
        await producer.stop()


def service_layout(service: str) -> tuple[Sequence[TableSpec], Sequence[TopicSpec]]:
    """The tables and inputs of a service whose partitioning follows access's agenda."""
    if service == "access":
        from services.access.state import TABLES
        from services.access.topics import READS

        return TABLES, READS
    if service == "evaluation":
        from services.evaluation.processing import PROCESSOR

        return PROCESSOR.tables, tuple(PROCESSOR.inputs)
    raise ValueError(f"no state to move for {service!r}: access or evaluation")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--service", required=True, choices=("access", "evaluation"))
    parser.add_argument("--app-id", help="the service's EMEUSE_<SVC>_APP_ID (emeuse-<service>)")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    # An operator's tool: it logs in as the `emeuse` command does.
    kafka_clients.use(tool_kafka_login())
    app_id = args.app_id or f"emeuse-{args.service}"
    tables, inputs = service_layout(args.service)
    try:
        check_stopped_and_drained(args.bootstrap, app_id, inputs)
    except NotSafe as refused:
        print(f"not moved: {refused}", file=sys.stderr)
        return 1
    topic = f"{app_id}-state-changelog"
    found = moves(read_changelog(args.bootstrap, topic), tables, PARTITIONS)
    print(f"{topic}: {len(found)} entr{'y' if len(found) == 1 else 'ies'} to move")
    if found and not args.dry_run:
        asyncio.run(write_moves(args.bootstrap, topic, found, app_id))
        print("moved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
