"""After the integration tests (this module runs last: `zz`), nothing the platform wrote
names a person: every topic (changelogs and dead letters included, read_committed) and every
service log of the run is scanned with the one detector of direct identifiers.

scripts/test.sh runs it twice: after the main pass, and after the fault suite's short rounds
(their own pass), so the chaos instances' topics and logs are scanned too; the poison records
those rounds write on purpose are left out by their positions (the `poison_records` fixture)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from emeuse.runtime.unreadable import poll
from tests.integration.identifier_scan import Finding, findings_in_log, findings_in_record

IDLE_SECONDS = 3.0

Record = tuple[str, int, int, bytes | None, bytes | None, list[tuple[Any, bytes | None]]]


def every_record(bootstrap: str) -> Iterator[Record]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=5000,
    )
    try:
        # Not the broker's own bookkeeping (group offsets, transaction states): no payloads.
        topics = sorted(t for t in consumer.topics() if not t.startswith("__"))
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        last = time.monotonic()
        while time.monotonic() - last < IDLE_SECONDS:
            # A record kafka-python cannot decode (a header key that is not UTF-8, as
            # test_raw_records sends) is read raw, scanned too, and stepped over.
            batch, unreadable = poll(consumer, bootstrap, timeout_ms=500)
            for u in unreadable:
                last = time.monotonic()
                raw = u.raw
                if raw is not None:
                    yield u.topic, u.partition, u.offset, raw.key, raw.value, list(raw.headers)
            for records in batch.values():
                last = time.monotonic()
                for r in records:
                    yield r.topic, r.partition, r.offset, r.key, r.value, list(r.headers or ())
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
    finally:
        consumer.close()


def report(findings: list[Finding]) -> str:
    shown = "\n".join(f"  {f.where}: {f.kind}" for f in findings[:50])
    by_place = Counter(f"{f.where.split('[')[0].split(':')[0]}: {f.kind}" for f in findings)
    counted = "\n".join(f"  {n} in {place}" for place, n in by_place.most_common())
    return f"{len(findings)} direct identifier(s) left behind:\n{counted}\nfirst:\n{shown}"


def test_no_topic_holds_a_direct_identifier(
    bootstrap: str, poison_records: set[tuple[str, int, int]]
) -> None:
    findings: list[Finding] = []
    scanned = 0
    for record in every_record(bootstrap):
        scanned += 1
        findings.extend(findings_in_record(*record, poison=poison_records))
    assert scanned > 0, "the scan read nothing: is the broker the tests' one?"
    assert not findings, report(findings)


def test_no_service_log_holds_a_direct_identifier(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The services' logs: beside the secrets of the platform the tests started (not the
    # logs of tools such as Prometheus).
    logs = [
        log
        for log in sorted(Path(tmp_path_factory.getbasetemp()).rglob("*.log"))
        if (log.parent / "secrets").is_dir()
    ]
    assert logs, "no service log found under the test run's directories"
    findings = [finding for log in logs for finding in findings_in_log(log)]
    assert not findings, report(findings)
