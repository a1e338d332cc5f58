"""Reading a whole compacted topic into memory on every instance, then following it.

For small directories every instance needs in full (partners, campaigns): not a kernel
table, which would split them across instances by partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from emeuse.runtime import kafka_clients

log = structlog.get_logger("emeuse.follower")
Apply = Callable[[bytes | None, bytes | None], None]
# A directory that checks each record as the kernel does (care_teams.py: its envelope,
# partition...) is given the consumed record itself.
ApplyRecord = Callable[[Any], None]
Hook = Callable[[], None]


async def follow(
    topic: str,
    partitions: int,
    apply: Apply | ApplyRecord,
    ready: asyncio.Event,
    bootstrap: str,
    stopping: Callable[[], bool],
    reloading: Hook | None = None,
    caught_up: Hook | None = None,
    *,
    whole_records: bool = False,
) -> None:
    """Apply every record of `topic` from its beginning, then new ones as they come, until
    `stopping()`. `reloading()` is called before the first record (a directory reads into
    a fresh copy), `caught_up()` once the records there at start are applied (it swaps
    the copy in), then `ready` is set: after a restart, stale records of the log never
    show in the directory in use. With `whole_records`, `apply` is given each consumed
    record (key, value, headers, partition, offset) rather than its key and value."""
    # Read committed, as every consumer of the platform's topics: a record of an aborted
    # transaction never enters a directory.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **kafka_clients.client_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    await consumer.start()
    try:
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        if reloading is not None:
            reloading()
        loaded = False
        while not stopping():
            batches = await consumer.getmany(timeout_ms=200)
            for _, records in sorted(batches.items(), key=lambda item: item[0].partition):
                for record in records:
                    if whole_records:
                        cast(ApplyRecord, apply)(record)
                    else:
                        cast(Apply, apply)(record.key, record.value)
            if not loaded and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                loaded = True
                if caught_up is not None:
                    caught_up()
                ready.set()
                log.info("follower.ready", topic=topic)
    finally:
        await consumer.stop()


async def keep_following(
    topic: str,
    partitions: int,
    apply: Apply | ApplyRecord,
    ready: asyncio.Event,
    bootstrap: str,
    stopping: Callable[[], bool],
    reloading: Hook | None = None,
    caught_up: Hook | None = None,
    *,
    whole_records: bool = False,
) -> None:
    """`follow`, started again after a broker failure, until the worker stops."""
    while not stopping():
        try:
            await follow(
                topic,
                partitions,
                apply,
                ready,
                bootstrap,
                stopping,
                reloading,
                caught_up,
                whole_records=whole_records,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("follower.failed", topic=topic, error=type(exc).__name__)
            await asyncio.sleep(1.0)
