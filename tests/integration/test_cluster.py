"""chronic on a three-node Kafka cluster (deploy/kafka/cluster.sh), with the node that leads
most reading partitions killed -9 mid-stream: no alert lost or raised twice, processing goes
on, the node comes back into every partition's in-sync replicas.

A round of the fault suite (tests/chaos) with one fault, the cluster's broker kill, and two
instances of chronic. The cluster is the test's own: its ports follow KAFKA_PORT (the
session broker's, scripts/test.sh), nodes on +10..+13, +20..+23, +30..+33 and chronic's
instances on +40..+59, so nothing else the run starts is on them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emeuse.registry import READING_RECORDED
from tests.chaos.cluster import KafkaCluster
from tests.chaos.faults import BROKER_FAULTS
from tests.chaos.report import table
from tests.chaos.round import RoundConfig, run_round
from tests.chaos.scenarios import SCENARIOS

PORT = int(os.environ.get("KAFKA_PORT", "19092"))
INSTANCE_PORTS = range(PORT + 40, PORT + 60)
CHRONIC = SCENARIOS["chronic"]
INTERNAL = ["__consumer_offsets", "__transaction_state"]


@pytest.fixture
def kafka_cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    # Beside the session broker's data (scripts/test.sh wipes it each run), else in tmp_path.
    home = Path(os.environ["KAFKA_HOME"]) / "cluster" if "KAFKA_HOME" in os.environ else tmp_path
    env = os.environ | {
        "KAFKA_HOME": str(home),
        "KAFKA_CLUSTER_PORT": str(PORT + 10),
        "KAFKA_SECURE_PORT": "off",
        "EMEUSE_KAFKA_PARTNER_PROTOCOL": "SASL_PLAINTEXT",
    }
    cluster = KafkaCluster(env, READING_RECORDED.name)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def in_sync_everywhere(cluster: KafkaCluster, topics: list[str], timeout: float) -> list[str]:
    """Waits until every partition of `topics` has its three replicas in sync; returns the
    partitions still short of one at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        short = [
            f"{topic}[{p['partition_index']}] isr {p['isr_nodes']}"
            for topic, partitions in cluster.describe(topics).items()
            for p in partitions
            if len(p["isr_nodes"]) < 3
        ]
        if not short or time.monotonic() > deadline:
            return short
        time.sleep(1)


@pytest.mark.timeout(600)
def test_chronic_loses_no_alert_and_repeats_none_when_the_leading_broker_is_killed(
    kafka_cluster, tmp_path, monkeypatch
):
    started = time.monotonic()
    # As `cluster.sh env` says: what `emeuse topics create` and the services read.
    monkeypatch.setenv("EMEUSE_REPLICATION_FACTOR", str(kafka_cluster.replication_factor))
    ports = iter(INSTANCE_PORTS)
    config = RoundConfig(
        seed=3,
        patients=60,
        readings=600,
        instances=2,
        stream_s=30.0,
        short=True,
        broker_faults=True,
        kinds=BROKER_FAULTS,
        service_env={"EMEUSE_REPLICATION_FACTOR": "3"},
        port=lambda: next(ports),
    )
    report = run_round(config, CHRONIC, kafka_cluster.bootstrap, tmp_path, kafka_cluster)
    print(table(report))

    (fault,) = report.faults
    assert fault.kind == "broker-kill-9" and fault.target.startswith("node "), fault
    alerts = next(row for row in report.rows if row.what.startswith("alerts raised"))
    assert alerts.expected > 0
    for row in report.rows:
        assert (row.lost, row.dup_by_id, row.dup_by_meaning, row.unexpected) == (0, 0, 0, 0), row
        assert row.seen == row.expected, row
    assert report.unprocessed == {}
    assert report.produce_failures == 0
    # Resumed on the two nodes left: before the killed one answered again.
    assert fault.recovery_s is not None and fault.back_s is not None, table(report)
    assert fault.recovery_s < fault.back_s, table(report)
    assert report.ok, table(report)

    # Every topic of the round has three copies, and the restarted node holds its own again.
    topics = [
        *(spec.name for spec in (*CHRONIC.inputs, *CHRONIC.outputs)),
        f"{report.app_id}-state-changelog",
        *INTERNAL,
    ]
    described = kafka_cluster.describe(topics)
    replicas = {t: {len(p["replica_nodes"]) for p in parts} for t, parts in described.items()}
    assert replicas == {t: {3} for t in topics}
    assert in_sync_everywhere(kafka_cluster, topics, timeout=60) == []
    print(f"cluster round: {time.monotonic() - started:.0f} s")
