"""The platform's consumer lag, as the live view shows it: records on the topics the
services read that their consumer groups have not committed yet.

Read every few seconds by a thread of its own with kafka-python's admin client (the
groups' committed offsets) and a read_committed consumer (the partitions' last stable
offsets), never per event. Only the services' groups (`emeuse-<service>`, their default
application ids) are counted.

Offsets are not records: a transaction's commit marker takes an offset of each partition
it wrote, and a consumer's commit stops before it (it commits the next record's offset).
So a group a few offsets short of a partition's end has that tail read, and only the
records a consumer would be handed are counted: a group at rest is at 0. Further behind
than READ_AT_MOST offsets (or a tail not read within READ_FOR_S), every offset between
counts, markers included: at most one too many per transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from emeuse.registry import SERVICES
from emeuse.runtime.kafka_clients import client_options
from emeuse.runtime.security import PLAINTEXT, KafkaLogin

EVERY_S = 3.0
# Tails this short are read to count their records exactly; a round reads them for at most
# READ_FOR_S (a few fetches at rest: one marker per partition written in transactions).
READ_AT_MOST = 1_000
READ_FOR_S = 1.0
SERVICE_GROUPS = tuple(f"emeuse-{service}" for service in SERVICES)


@dataclass(frozen=True)
class Lag:
    per_group: dict[str, int]  # group -> records not yet committed

    @property
    def total(self) -> int:
        return sum(self.per_group.values())

    def describe(self) -> str:
        if not self.per_group:
            return "no service consumer group has committed yet"
        shown = ", ".join(
            f"{group.removeprefix('emeuse-')} {lag:,}"
            for group, lag in sorted(self.per_group.items())
        )
        return f"{self.total:,} records ({shown})"


@dataclass(frozen=True)
class Tail:
    """What a read_committed consumer was handed of a partition from `start` to its end:
    the records' offsets (never a transaction marker's, nor an aborted record's)."""

    start: int
    records: tuple[int, ...]


def group_lag(
    committed: Mapping[str, Mapping[TopicPartition, int]],
    ends: Mapping[TopicPartition, int],
    tails: Mapping[TopicPartition, Tail] | None = None,
) -> Lag:
    """Per group, the records between its committed offsets and the partitions' ends:
    counted in the tail read where one covers the gap, else every offset between."""
    tails = tails or {}
    return Lag(
        {
            group: sum(
                _pending(offset, ends.get(tp, offset), tails.get(tp))
                for tp, offset in offsets.items()
            )
            for group, offsets in committed.items()
            if offsets
        }
    )


def _pending(committed: int, end: int, tail: Tail | None) -> int:
    if end <= committed:
        return 0
    if tail is not None and tail.start <= committed:
        return sum(1 for offset in tail.records if committed <= offset < end)
    return end - committed


def tails_to_read(
    committed: Mapping[str, Mapping[TopicPartition, int]], ends: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """The partitions some group is at most READ_AT_MOST offsets short of the end of, each
    from the furthest such group's offset (one read serves every group)."""
    starts: dict[TopicPartition, int] = {}
    for offsets in committed.values():
        for tp, offset in offsets.items():
            if 0 < ends.get(tp, offset) - offset <= READ_AT_MOST:
                starts[tp] = min(offset, starts.get(tp, offset))
    return starts


def read_tails(
    consumer: KafkaConsumer,
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    within_s: float = READ_FOR_S,
) -> dict[TopicPartition, Tail]:
    """Read each partition from its start until the consumer's position reaches the end
    (it steps over markers and aborted records); a tail not read by then is left out."""
    found: dict[TopicPartition, list[int]] = {tp: [] for tp in starts}
    consumer.assign(list(starts))
    for tp, start in starts.items():
        consumer.seek(tp, start)
    unread = set(starts)
    deadline = time.monotonic() + within_s
    while unread and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=100).items():
            found[tp].extend(r.offset for r in records if r.offset < ends[tp])
        unread = {tp for tp in unread if consumer.position(tp) < ends[tp]}
    return {tp: Tail(starts[tp], tuple(found[tp])) for tp in starts if tp not in unread}


class PlatformLag:
    """A thread measuring the services' consumer-group lag every `every_s` seconds."""

    def __init__(
        self,
        bootstrap: str,
        every_s: float = EVERY_S,
        login: KafkaLogin = PLAINTEXT,
        groups: Sequence[str] = SERVICE_GROUPS,
    ) -> None:
        self.bootstrap, self.every_s = bootstrap.split(","), every_s
        self.login = login
        self.groups = list(groups)
        self.latest: Lag | None = None
        self.error: str | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._measure, name="platform-lag", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def describe(self) -> str:
        if self.latest is not None:
            return self.latest.describe()
        return f"not measured ({self.error})" if self.error else "measuring..."

    def _measure(self) -> None:
        admin = consumer = None
        while not self.stopping.is_set():
            try:
                if admin is None or consumer is None:
                    admin = KafkaAdminClient(
                        bootstrap_servers=self.bootstrap,
                        client_id="emeuse-simulate-lag",
                        **client_options(self.login),
                    )
                    consumer = KafkaConsumer(
                        bootstrap_servers=self.bootstrap,
                        client_id="emeuse-simulate-lag",
                        **client_options(self.login),
                        isolation_level="read_committed",
                        enable_auto_commit=False,
                        # A group's offset the log no longer holds: read from the first
                        # record it still does, as the service's consumer would.
                        auto_offset_reset="earliest",
                    )
                listed = admin.list_group_offsets({group: None for group in self.groups})
                committed = {
                    group: {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
                    for group, offsets in listed.items()
                }
                partitions = {tp for offsets in committed.values() for tp in offsets}
                ends = consumer.end_offsets(sorted(partitions)) if partitions else {}
                tails = read_tails(consumer, tails_to_read(committed, ends), ends)
                self.latest, self.error = group_lag(committed, ends, tails), None
            except (KafkaError, OSError, KeyError) as exc:
                # kafka-python's end_offsets raises KeyError for a partition whose offset
                # lookup failed (a leader moving): shown in the view, tried again next round.
                self.error = type(exc).__name__
            self.stopping.wait(self.every_s)
        for client in (admin, consumer):
            if client is not None:
                client.close()
