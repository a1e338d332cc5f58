"""`emeuse audit`: who read or changed a person's data through gRPC, and when.

Reads the audit topic (emeuse.audit.patient-data-accessed.v1) up to its current end and
prints one row per record, oldest first. `--subject` (or `--patient`) reads only that
person's partition.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from kafka import KafkaConsumer, TopicPartition

from emeuse.audit.v1.audit_events_pb2 import AuditAction, PatientDataAccessed
from emeuse.cli import kafka
from emeuse.cli.errors import CliError
from emeuse.registry import PATIENT_DATA_ACCESSED
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.pseudonym import is_pseudonym

COLUMNS = (
    "answered at (UTC)",
    "caller",
    "role",
    "purpose",
    "method",
    "action",
    "patient",
    "outcome",
)
_AGO = re.compile(r"(\d+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_audit_command(commands: Any, bootstrap_option: Callable[[Any], None]) -> None:
    audit = commands.add_parser(
        "audit", help="who read or changed a person's data through gRPC (the audit trail)"
    )
    audit.add_argument(
        "--subject",
        "--patient",
        dest="patient",
        help="only this person's records, patient or resident (a psn-... pseudonym)",
    )
    audit.add_argument("--caller", help="only this caller id's records")
    audit.add_argument(
        "--since",
        help="only records answered since a time (2026-12-07, 2026-12-07T08:00Z)"
        " or within an age (90m, 24h, 7d)",
    )
    audit.add_argument("--json", action="store_true", help="one JSON record per line")
    audit.add_argument(
        "--timeout", type=float, default=10.0, help="give up reading after S seconds"
    )
    bootstrap_option(audit)


def parse_since(raw: str, now: datetime) -> datetime:
    age = _AGO.fullmatch(raw)
    if age:
        return now - timedelta(seconds=int(age[1]) * _UNIT_S[age[2]])
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since {raw!r}: expected a date, a time or an age like 24h") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_audit(
    args: argparse.Namespace, connect: Callable[[str], KafkaConsumer] = kafka.consumer
) -> int:
    if args.patient and not is_pseudonym(args.patient):
        raise CliError("--subject: expected a platform pseudonym (psn-...)")
    since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    consumer = connect(args.bootstrap)
    try:
        with kafka.kafka_errors(args.bootstrap):
            rows = [
                record
                for record in _records(consumer, args.patient, since, args.timeout)
                if (not args.patient or record.subject_pseudonym == args.patient)
                and (not args.caller or record.caller_id == args.caller)
                and (since is None or record.answered_at.ToDatetime(tzinfo=UTC) >= since)
            ]
    finally:
        consumer.close()
    rows.sort(key=lambda r: (r.answered_at.seconds, r.answered_at.nanos))
    if args.json:
        for record in rows:
            print(json.dumps(json_format.MessageToDict(record, preserving_proto_field_name=True)))
    else:
        print_table([row_of(record) for record in rows])
    return 0


def _records(
    consumer: KafkaConsumer, patient: str | None, since: datetime | None, timeout: float
) -> Iterator[PatientDataAccessed]:
    spec = PATIENT_DATA_ACCESSED
    partitions = consumer.partitions_for_topic(spec.name)
    if not partitions:
        raise CliError(f"topic {spec.name} does not exist; run `emeuse topics create`")
    if patient:
        partitions = {expected_partition(patient.encode(), spec.partitions)}
    assigned = [TopicPartition(spec.name, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    ends = consumer.end_offsets(assigned)
    consumer.seek_to_beginning(*assigned)
    if since is not None:
        starts = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in assigned})
        for tp, found in starts.items():
            if found is None:
                consumer.seek(tp, ends[tp])
            else:
                consumer.seek(tp, found.offset)
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while any(consumer.position(tp) < ends[tp] for tp in assigned):
        if datetime.now(UTC) > deadline:
            raise CliError(f"the audit topic was not read to its end within {timeout:g} s")
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                if record.offset < ends[TopicPartition(record.topic, record.partition)]:
                    yield PatientDataAccessed.FromString(record.value)


def row_of(record: PatientDataAccessed) -> tuple[str, ...]:
    outcome = record.outcome
    if record.refusal_reason:
        outcome += f": {record.refusal_reason}"
    return (
        record.answered_at.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S"),
        record.caller_id,
        record.caller_role or "-",
        record.purpose_of_event or "-",
        f"{record.service}.{record.method.rpartition('/')[2]}",
        "write" if record.action == AuditAction.AUDIT_ACTION_WRITE else "read",
        record.subject_pseudonym,
        outcome,
    )


def print_table(rows: list[tuple[str, ...]]) -> None:
    if not rows:
        print("no audit record matches")
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    for row in [COLUMNS, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
