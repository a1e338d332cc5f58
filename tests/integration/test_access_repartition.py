"""The operator's one-off move of access state kept under the old partitioning, on the real
broker: refused while inputs wait, then every live entry on its new partition, once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from emeuse.access.v1.access_events_pb2 import PlaceRegistered
from emeuse.kernel.store import changelog_key
from emeuse.registry import TopicSpec
from emeuse.runtime.codec import expected_partition
from services.access.repartition import (
    NotSafe,
    check_stopped_and_drained,
    moves,
    read_changelog,
    write_moves,
)
from services.access.state import REQUESTS, SLOTS, TABLES

OLD = expected_partition(b"55", 6)


def live(records):
    last = {}
    for partition, key, value in records:
        last[(partition, key)] = value
    return {k: v for k, v in last.items() if v is not None}


def test_old_state_moves_to_the_new_partitions_once_the_inputs_are_drained(bootstrap):
    app_id = f"it-repartition-{uuid.uuid4().hex[:8]}"
    changelog, inputs = f"{app_id}-state-changelog", f"{app_id}-input"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t, 6, 1) for t in (changelog, inputs)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    entries = {
        changelog_key(REQUESTS, "52|r-1"): b"request of 52",
        changelog_key(SLOTS, "54|s-1"): b"slot of 54",
        changelog_key(SLOTS, "55|s-1"): b"slot of 55",
    }
    for key, value in entries.items():
        producer.send(changelog, value, key=key, partition=OLD)
    spec = TopicSpec(inputs, PlaceRegistered, "territory", "access", "test input")
    producer.send(inputs, b"waiting", key=b"55", partition=2)
    producer.flush()
    with pytest.raises(NotSafe, match="not handled yet"):
        check_stopped_and_drained(bootstrap, app_id, [spec])
    handled = KafkaConsumer(bootstrap_servers=bootstrap, group_id=app_id)
    handled.commit({TopicPartition(inputs, 2): OffsetAndMetadata(1, "", -1)})
    handled.close()
    check_stopped_and_drained(bootstrap, app_id, [spec])

    found = moves(read_changelog(bootstrap, changelog), TABLES, 6)
    asyncio.run(write_moves(bootstrap, changelog, found, app_id))

    now = live(read_changelog(bootstrap, changelog))
    for key, value in entries.items():
        territory = key.split(b"\x00")[1][:2].decode()
        home = expected_partition(f"agenda-{territory}".encode(), 6)
        assert now.get((home, key)) == value
        assert [p for p, k in now if k == key] == [home]
    assert len(found) == sum(
        expected_partition(f"agenda-{t}".encode(), 6) != OLD for t in ("52", "54", "55")
    )
    assert moves(read_changelog(bootstrap, changelog), TABLES, 6) == []
