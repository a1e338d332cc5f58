"""Noticing an input partition the worker stopped reading, and getting it read again.

faust-streaming can come out of a rebalance with an assigned partition it never fetches
from again until the next rebalance (faust-streaming #629). Its records then wait
unseen: a write accepted over gRPC is never applied, a reading never checked. Every
WATCH_INTERVAL_S the watchdog compares, for each assigned input partition, the broker's end
offset with the consumer's position. A partition with records waiting whose position has
not moved for STALL_S is logged and counted, and resumed; one still stuck STALL_S later
makes the worker ask its group to rebalance, which assigns and seeks every partition afresh
(what ends the stall when it happens by itself).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

import faust
import structlog
from aiokafka.errors import IllegalStateError, KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.transport.consumer import Consumer
from faust.types import TP

from emeuse.runtime import metrics

WATCH_INTERVAL_S = 5.0
STALL_S = 10.0
# faust pauses partitions on purpose while it rebalances (up to a dead member's 60 s
# session timeout); past this long, a rebalance that never ends is itself watched.
SETTLE_LIMIT_S = 90.0
# A position the consumer cannot give at once is being reset: not a stall.
POSITION_TIMEOUT_S = 2.0
log = structlog.get_logger("emeuse.watchdog")


@dataclass
class Stall:
    position: int
    since: float
    resumed: bool = False
    rejoined: bool = False


@dataclass
class PartitionWatch:
    """Per partition: the position last seen and since when records wait behind it."""

    service: str
    stalls: dict[TP, Stall] = field(default_factory=dict)
    settling_since: float | None = None

    def settling(self, rebalancing: bool, now: float) -> bool:
        """Whether to skip this round: faust is rebalancing, and not for too long."""
        if not rebalancing:
            self.settling_since = None
            return False
        if self.settling_since is None:
            self.settling_since = now
        if now - self.settling_since < SETTLE_LIMIT_S:
            self.stalls.clear()  # positions stand still on purpose meanwhile
            return True
        return False

    def observe(self, tp: TP, position: int | None, end: int | None, now: float) -> str | None:
        """What to do for `tp` now: None, "resume" or "rejoin" (pure: no consumer)."""
        if position is None or end is None or position >= end:
            self.stalls.pop(tp, None)
            return None
        stall = self.stalls.get(tp)
        if stall is None or stall.position != position:
            self.stalls[tp] = Stall(position, now)
            return None
        waited = now - stall.since
        if waited >= 2 * STALL_S and not stall.rejoined:
            stall.rejoined = True
            return "rejoin"
        if waited >= STALL_S and not stall.resumed:
            stall.resumed = True
            return "resume"
        return None

    def forget_except(self, tps: set[TP]) -> None:
        for tp in set(self.stalls) - tps:
            del self.stalls[tp]


def input_partitions(app: faust.App) -> set[TP]:
    """Assigned partitions of the topics the agents read (not changelogs, not faust's own)."""
    changelogs = set(app.tables.changelog_topics)
    return {
        tp
        for tp in app.consumer.assignment()
        if tp.topic not in changelogs and not tp.topic.endswith("__assignor-__leader")
    }


async def watch_partitions(app: faust.App, watch: PartitionWatch) -> None:
    """One round of the watchdog (a faust timer calls it; an error must not stop the worker)."""
    try:
        await _watch(app, watch)
    except (KafkaError, ConsumerNotStarted, TimeoutError) as exc:
        log.warning("watchdog.round_failed", error=type(exc).__name__)


async def _watch(app: faust.App, watch: PartitionWatch) -> None:
    if app.in_recovery:
        # Input partitions wait on purpose while tables are read back, however long that
        # takes: resuming them early would decide on state not yet recovered.
        watch.stalls.clear()
        return
    if watch.settling(app.rebalancing, time.monotonic()):
        return
    # faust's concrete consumer: its paused/active/buffered sets are what a stall is about.
    consumer = cast(Consumer, app.consumer)
    tps = input_partitions(app)
    watch.forget_except(tps)
    if not tps:
        return
    ends = await consumer.highwaters(*tps)
    now = time.monotonic()
    for tp in sorted(tps):
        if tp in consumer._buffered_partitions:
            continue  # faust's back-pressure: the agent is busy, not stuck
        try:
            position = await asyncio.wait_for(consumer.position(tp), POSITION_TIMEOUT_S)
        except (TimeoutError, IllegalStateError):  # being reset, or revoked in between
            watch.stalls.pop(tp, None)
            continue
        action = watch.observe(tp, position, ends.get(tp), now)
        if action is None:
            continue
        metrics.PARTITION_STALLS.labels(watch.service, tp.topic, action).inc()
        log.warning(
            "consumer.partition_stalled",
            topic=tp.topic,
            partition=tp.partition,
            position=position,
            end_offset=ends.get(tp),
            action=action,
            paused=tp in consumer._paused_partitions,
            active=tp in consumer._get_active_partitions(),
            flow_active=consumer.flow_active,
            rebalancing=app.rebalancing,
        )
        if action == "resume":
            consumer.resume_partitions({tp})
            app.flow_control.resume()
            consumer.resume_flow()
        else:
            await _ask_group_to_rebalance(consumer)


async def _ask_group_to_rebalance(consumer: Consumer) -> None:
    thread = consumer._thread  # type: ignore[attr-defined]

    async def rejoin() -> None:
        # aiokafka's coordinator runs in faust's consumer thread; ask it there.
        thread._ensure_consumer()._coordinator.request_rejoin()

    await thread.call_thread(rejoin)
