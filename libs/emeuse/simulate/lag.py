"""The platform's consumer lag, as the live view shows it: records on the topics the
services read that their consumer groups have not committed yet.

Read every few seconds by a thread of its own with kafka-python's admin client (the
groups' committed offsets) and a consumer (the partitions' ends), never per event. Only
the services' groups (`emeuse-<service>`, their default application ids) are counted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from emeuse.registry import SERVICES
from emeuse.runtime.kafka_clients import client_options
from emeuse.runtime.security import PLAINTEXT, KafkaLogin

EVERY_S = 3.0


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


def group_lag(
    committed: dict[str, dict[TopicPartition, int]], ends: dict[TopicPartition, int]
) -> Lag:
    """Per group, the records between its committed offsets and the partitions' ends."""
    return Lag(
        {
            group: sum(max(0, ends.get(tp, offset) - offset) for tp, offset in offsets.items())
            for group, offsets in committed.items()
            if offsets
        }
    )


class PlatformLag:
    """A thread measuring the services' consumer-group lag every `every_s` seconds."""

    def __init__(
        self, bootstrap: str, every_s: float = EVERY_S, login: KafkaLogin = PLAINTEXT
    ) -> None:
        self.bootstrap, self.every_s = bootstrap.split(","), every_s
        self.login = login
        self.groups = [f"emeuse-{service}" for service in SERVICES]
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
                    )
                listed = admin.list_group_offsets({group: None for group in self.groups})
                committed = {
                    group: {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
                    for group, offsets in listed.items()
                }
                partitions = {tp for offsets in committed.values() for tp in offsets}
                ends = consumer.end_offsets(sorted(partitions)) if partitions else {}
                self.latest, self.error = group_lag(committed, ends), None
            except (KafkaError, OSError, KeyError) as exc:
                # kafka-python's end_offsets raises KeyError for a partition whose offset
                # lookup failed (a leader moving): shown in the view, tried again next round.
                self.error = type(exc).__name__
            self.stopping.wait(self.every_s)
        for client in (admin, consumer):
            if client is not None:
                client.close()
