"""Noticing an input partition the worker stopped reading, and getting it read again.

faust-streaming can come out of a rebalance with an assigned partition it never fetches
from again until the next rebalance (faust-streaming #629). Its records then wait
unseen: a write accepted over gRPC is never applied, a reading never checked. Every
WATCH_INTERVAL_S the watchdog compares, for each assigned input partition, the broker's end
offset with the consumer's position. A partition with records waiting whose position has
not moved for STALL_S, while the worker is idle, is logged, counted and resumed; one still
stuck STALL_S after that makes the worker ask its group to rebalance (at most once every
REJOIN_EVERY_S), which assigns and seeks every partition afresh: what ends the stall when
it happens by itself.

Positions stand still on purpose, and are not judged: while faust rebalances or reads
tables back, while an agent handles a record or the producer drains its buffer (faust then
stops fetching: back-pressure), and across a round that could not reach the broker.

Table recovery has a watch of its own. After a rebalance faust reads each table back from
its changelog, with every input partition paused, until it reaches the changelog's end; it
can stop reading short of it and wait forever (seen here when an instance joins or leaves:
the worker answers nothing for good). Recovery that has records left and reads none of them
for RECOVERY_STALL_S makes the worker ask its group to rebalance, which starts recovery
afresh (after RECOVERY_REJOIN_EVERY_S at least, twice as long each time it comes back).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import structlog
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.types import TP
from kafka import KafkaConsumer, TopicPartition
from mode import Service

from emeuse.runtime import metrics

WATCH_INTERVAL_S = 5.0
STALL_S = 10.0
REJOIN_EVERY_S = 300.0
# A worker that stays unsettled this long is reported (and again as long again later):
# the watchdog cannot judge it, and a rebalance or recovery should not last that long.
UNSETTLED_REPORT_S = 60.0
END_OFFSETS_TIMEOUT_S = 5.0
NO_POSITION = -1
# A stuck recovery stops the whole worker, so it is retried sooner than a stuck partition.
RECOVERY_STALL_S = 15.0
RECOVERY_REJOIN_EVERY_S = 30.0
log = structlog.get_logger("emeuse.watchdog")


@dataclass
class Stall:
    position: int
    since: float
    resumed_at: float | None = None
    reread_from: int | None = None


def _standing(stalls: dict[TP, Stall], tp: TP, position: int, now: float) -> Stall | None:
    """`tp`'s record if its position has not moved since last seen; else None, and it is
    counted from now."""
    stall = stalls.get(tp)
    if stall is None or stall.position != position:
        stalls[tp] = Stall(position, now)
        return None
    return stall


@dataclass
class RecoveryWatch:
    """Whether table recovery still reads its changelogs, from what it has left to read."""

    left: tuple[tuple[TP, int], ...] = ()
    generation: int | None = None
    since: float | None = None
    last_rejoin: float | None = None
    rejoins: int = 0

    def stalled(
        self, now: float, remaining: Mapping[TP, int] | None, generation: int = 0
    ) -> float | None:
        """Seconds recovery has read nothing with records left, when it is time to rebalance
        (pure: no consumer); else None. `remaining` is None when no recovery is reading
        (none runs, or the group is being joined); `generation` is the consumer group's."""
        left = tuple(sorted((tp, n) for tp, n in (remaining or {}).items() if n > 0))
        if not left:
            self.left, self.since = (), None
            if remaining is not None:  # a recovery read to its end: the next stall is new
                self.rejoins = 0
            return None
        if left != self.left or generation != self.generation or self.since is None:
            self.left, self.generation, self.since = left, generation, now
            return None
        waited = now - self.since
        # A stall that comes back is retried less and less often (30 s, 60 s... 5 min).
        pause = min(RECOVERY_REJOIN_EVERY_S * 2 ** max(self.rejoins - 1, 0), REJOIN_EVERY_S)
        recently = self.last_rejoin is not None and now - self.last_rejoin < pause
        if waited < RECOVERY_STALL_S or recently:
            return None
        # The rebalance starts recovery again: it gets as long again before the next one.
        self.last_rejoin, self.since = now, now
        self.rejoins += 1
        return waited


@dataclass
class PartitionWatch:
    """Per partition: the position last seen and since when records wait behind it."""

    service: str
    stalls: dict[TP, Stall] = field(default_factory=dict)
    skips: dict[TP, Stall] = field(default_factory=dict)
    last_round: float | None = None
    last_rejoin: float | None = None
    unsettled_since: float | None = None
    unsettled_reported_at: float | None = None
    recovery: RecoveryWatch = field(default_factory=RecoveryWatch)

    def long_unsettled(self, now: float, *, settled: bool) -> float | None:
        """Seconds the worker has stayed unsettled, when it is time to report it; else None."""
        if settled:
            self.unsettled_since = self.unsettled_reported_at = None
            return None
        if self.unsettled_since is None:
            self.unsettled_since = now
        since_report = now - (self.unsettled_reported_at or self.unsettled_since)
        if since_report < UNSETTLED_REPORT_S:
            return None
        self.unsettled_reported_at = now
        return now - self.unsettled_since

    def begin_round(self, now: float, *, settled: bool) -> bool:
        """Whether this round may judge positions. An unsettled worker (rebalancing,
        recovering, busy) or a gap since the last round restarts every partition's clock."""
        gap = self.last_round is not None and now - self.last_round > 2 * WATCH_INTERVAL_S
        self.last_round = now
        if not settled or gap:
            self.stalls.clear()
            self.skips.clear()
            return False
        return True

    def observe(self, tp: TP, position: int | None, end: int | None, now: float) -> str | None:
        """What to do for `tp` now: None, "resume", then "rejoin" (pure: no consumer)."""
        if position is None or end is None or max(position, 0) >= end:  # nothing waits
            self.stalls.pop(tp, None)
            return None
        stall = _standing(self.stalls, tp, position, now)
        if stall is None:
            return None
        if stall.resumed_at is None:
            if now - stall.since >= STALL_S:
                stall.resumed_at = now
                return "resume"
            return None
        recently = self.last_rejoin is not None and now - self.last_rejoin < REJOIN_EVERY_S
        if now - stall.resumed_at >= STALL_S and not recently:
            self.last_rejoin = now
            return "rejoin"
        return None

    def skipped(self, tp: TP, position: int | None, read_from: int | None, now: float) -> bool:
        """Whether to read `tp` again from `read_from` (pure: no consumer). The worker is idle
        with nothing in flight, so everything it read should be handled and committed: a
        position past the group's commit for STALL_S means records were fetched and dropped
        before reaching the agent (they would wait for the next rebalance)."""
        if position is None or read_from is None or position <= read_from:
            self.skips.pop(tp, None)
            return False
        skip = _standing(self.skips, tp, position, now)
        if skip is None:
            return False
        if now - skip.since < STALL_S or skip.reread_from == read_from:
            return False  # read again from there once already: no loop of re-reads
        skip.since, skip.reread_from = now, read_from
        return True

    def forget_except(self, tps: Iterable[TP]) -> None:
        for tp in set(self.stalls) - set(tps):
            del self.stalls[tp]
        for tp in set(self.skips) - set(tps):
            del self.skips[tp]


@dataclass(frozen=True)
class Offsets:
    """What the broker says of assigned partitions: where each ends, and where the worker's
    group is to read from (its committed offset, else the partition's first)."""

    ends: dict[TP, int]
    read_from: dict[TP, int]


class BrokerOffsets:
    """The broker's offsets, asked by a client of the watchdog's own (kafka-python, in a
    thread): never through faust's consumer thread, whose two workers fetch and commit. The
    client names the worker's group only to read its commits; it never joins the group."""

    def __init__(self, bootstrap: Sequence[str], group: str | None = None) -> None:
        self._bootstrap = list(bootstrap)
        self._group = group
        self._client: KafkaConsumer | None = None
        self._asking: asyncio.Future[Offsets] | None = None

    async def of(self, tps: Iterable[TP]) -> Offsets | None:
        """The offsets, or None when the broker did not answer in time (or still has not
        answered the last round: one question at a time)."""
        if self._asking is not None and not self._asking.done():
            return None
        wanted = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        self._asking = asyncio.ensure_future(asyncio.to_thread(self._ask, wanted))
        try:
            return await asyncio.wait_for(asyncio.shield(self._asking), END_OFFSETS_TIMEOUT_S)
        except TimeoutError:
            return None

    def _ask(self, wanted: list[TopicPartition]) -> Offsets:
        if self._client is None:
            self._client = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=self._group,
                enable_auto_commit=False,
                request_timeout_ms=int(END_OFFSETS_TIMEOUT_S * 1000) + 1000,
                client_id="emeuse-watchdog",
            )
        ends = self._client.end_offsets(wanted)
        read_from: dict[TP, int] = {}
        if self._group is not None:
            timeout_ms = int(END_OFFSETS_TIMEOUT_S * 1000)
            # One OffsetFetch for all, bounded (the public committed() asks one partition at
            # a time and retries for ever while the group's coordinator is away).
            commits = self._client._coordinator.fetch_committed_offsets(
                wanted, timeout_ms=timeout_ms
            )
            never = [tp for tp in wanted if commits.get(tp) is None]
            firsts = self._client.beginning_offsets(never, timeout_ms=timeout_ms) if never else {}
            for tp in wanted:
                committed = commits.get(tp)
                read_from[TP(tp.topic, tp.partition)] = (
                    committed.offset if committed is not None else firsts[tp]
                )
        return Offsets({TP(tp.topic, tp.partition): n for tp, n in ends.items()}, read_from)


def input_partitions(app: faust.App) -> set[TP]:
    """Assigned partitions of the topics the agents read (not changelogs, not faust's own)."""
    changelogs = set(app.tables.changelog_topics)
    return {
        tp
        for tp in app.consumer.assignment()
        if tp.topic not in changelogs and not tp.topic.endswith("__assignor-__leader")
    }


def _aiokafka(consumer: Consumer) -> Any:
    """aiokafka's consumer under faust's, read as faust's own checks read it (its state only:
    calls into it belong to faust's consumer thread)."""
    return consumer._thread._ensure_consumer()  # type: ignore[attr-defined]


def positions(consumer: Consumer, tps: Iterable[TP]) -> dict[TP, int]:
    """aiokafka's fetch position of each assigned partition (NO_POSITION while awaiting a
    reset), read as faust's own checks read it (no call into the consumer thread)."""
    subscription = _aiokafka(consumer)._fetcher._subscriptions.subscription
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return {}
    found = {}
    for tp in tps:
        state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
        if state is None:
            continue
        # No position yet: awaiting a reset. A reset takes milliseconds; one that never
        # comes leaves the partition unread, so it counts as standing still before 0.
        found[tp] = state.position if state.has_valid_position else NO_POSITION
    return found


def unsettled_by(app: faust.App, busy: Callable[[], bool]) -> list[str]:
    """Why positions standing still would mean nothing now (none: they would)."""
    producer = app.producer
    reasons = {
        "rebalancing": app.rebalancing,
        "in_recovery": app.in_recovery,
        "handling": busy(),
        "producer_draining": producer.buffer.size > producer.buffer.max_messages,
    }
    return [reason for reason, holds in reasons.items() if holds]


def settled(app: faust.App, busy: Callable[[], bool]) -> bool:
    return not unsettled_by(app, busy)


class Watchdog(Service):
    """The watchdog's rounds, as a service of the app: a faust timer would start only once
    the first table recovery is over, and that recovery can stall too."""

    def __init__(
        self, app: faust.App, watch: PartitionWatch, ends: BrokerOffsets, busy: Callable[[], bool]
    ) -> None:
        super().__init__()
        self.app, self.watch, self.ends, self.busy = app, watch, ends, busy

    @Service.timer(WATCH_INTERVAL_S)
    async def _round(self) -> None:
        # Before the consumer starts nothing is assigned; while stopping, faust pauses all.
        if self.app.consumer.started and not self.app.should_stop:
            await watch_partitions(self.app, self.watch, self.ends, self.busy)


def add_watchdog(
    app: faust.App,
    service: str,
    bootstrap: Sequence[str],
    busy: Callable[[], bool],
    *,
    group: str | None = None,
) -> Watchdog:
    """The watchdog as a service of `app`; with its consumer `group`, records fetched and
    dropped are read again from the group's commit too."""
    watchdog = Watchdog(app, PartitionWatch(service), BrokerOffsets(bootstrap, group), busy)
    app.add_dependency(watchdog)
    return watchdog


async def watch_partitions(
    app: faust.App, watch: PartitionWatch, ends: BrokerOffsets, busy: Callable[[], bool]
) -> None:
    """One round of the watchdog (a faust timer calls it; an error must not stop the worker)."""
    try:
        await _watch(app, watch, ends, busy)
    except Exception as exc:  # a timer that raises crashes the worker it watches
        log.warning("watchdog.round_failed", error=type(exc).__name__)


async def _watch(
    app: faust.App, watch: PartitionWatch, ends: BrokerOffsets, busy: Callable[[], bool]
) -> None:
    now, reasons = time.monotonic(), unsettled_by(app, busy)
    if await _unstick_recovery(app, watch, now):
        return
    lasted = watch.long_unsettled(now, settled=not reasons)
    if lasted is not None:
        log.warning("watchdog.long_unsettled", seconds=round(lasted), reasons=reasons)
    if not watch.begin_round(now, settled=not reasons):
        return
    # faust's concrete consumer: its paused/active/buffered sets are what a stall is about.
    consumer = cast(Consumer, app.consumer)
    generation = app.consumer_generation_id
    tps = input_partitions(app) - consumer._buffered_partitions
    watch.forget_except(tps)
    if not tps:
        return
    offsets = await ends.of(tps)
    # Judged only if nothing moved meanwhile: a rebalance, a record now being handled.
    if (
        offsets is None
        or app.consumer_generation_id != generation
        or not watch.begin_round(time.monotonic(), settled=settled(app, busy))
    ):
        watch.stalls.clear()
        watch.skips.clear()
        return
    end_offsets = offsets.ends
    now = time.monotonic()
    found = positions(consumer, tps)
    # Nothing in flight and no commit under way: what was read is handled and committed.
    if not consumer._unacked_messages and consumer._commit_fut is None:
        # Never below faust's own commit: it refuses acks under it (a failed commit).
        read_from = {
            tp: max(start, consumer._committed_offset.get(tp) or 0)
            for tp, start in offsets.read_from.items()
        }
        await _read_skipped_again(watch, consumer, found, read_from, now)
    for tp, position in sorted(found.items()):
        action = watch.observe(tp, position, end_offsets.get(tp), now)
        if action is None:
            continue
        metrics.PARTITION_STALLS.labels(watch.service, tp.topic, action).inc()
        log.warning(
            "consumer.partition_stalled",
            topic=tp.topic,
            partition=tp.partition,
            position=position,
            end_offset=end_offsets.get(tp),
            action=action,
            paused=tp in consumer._paused_partitions,
            active=tp in consumer._get_active_partitions(),
            flow_active=consumer.flow_active,
        )
        if action == "resume":
            consumer.resume_partitions({tp})
            app.flow_control.resume()
            consumer.resume_flow()
        else:
            await _ask_group_to_rebalance(consumer)
            return  # every partition is assigned afresh


async def _read_skipped_again(
    watch: PartitionWatch,
    consumer: Consumer,
    found: Mapping[TP, int],
    read_from: Mapping[TP, int],
    now: float,
) -> None:
    for tp, position in sorted(found.items()):
        start = read_from.get(tp)
        if not watch.skipped(tp, position, start, now):
            continue
        assert start is not None
        metrics.PARTITION_STALLS.labels(watch.service, tp.topic, "reread").inc()
        log.warning(
            "consumer.records_skipped",
            topic=tp.topic,
            partition=tp.partition,
            position=position,
            committed=start,
            action="reread",
        )
        # In faust's consumer thread, which also resets faust's own read offset.
        await consumer.seek_wait({tp: start})


async def _unstick_recovery(app: faust.App, watch: PartitionWatch, now: float) -> bool:
    """Rebalance when table recovery has stopped reading (True: the group was asked)."""
    recovery: Recovery = app.tables.recovery  # type: ignore[attr-defined]
    consumer = cast(Consumer, app.consumer)
    # While the group is joined, recovery's counts are the last generation's: not judged.
    joining = _aiokafka(consumer)._subscription.reassignment_in_progress
    reading = recovery.in_recovery and not joining
    remaining = recovery.active_remaining() if reading else None
    waited = watch.recovery.stalled(now, remaining, app.consumer_generation_id)
    if waited is None:
        return False
    metrics.RECOVERY_STALLS.labels(watch.service).inc()
    log.warning(
        "table.recovery_stalled",
        seconds=round(waited),
        records_left={f"{tp.topic}:{tp.partition}": n for tp, n in watch.recovery.left},
        action="rejoin",
        attempt=watch.recovery.rejoins,
    )
    await _ask_group_to_rebalance(consumer)
    return True


async def _ask_group_to_rebalance(consumer: Consumer) -> None:
    thread = consumer._thread  # type: ignore[attr-defined]

    async def rejoin() -> None:
        # aiokafka's coordinator runs in faust's consumer thread; ask it there.
        thread._ensure_consumer()._coordinator.request_rejoin()

    await thread.call_thread(rejoin)
