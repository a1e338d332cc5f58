"""One seeded round: instances up, enrolments applied, the stream under faults, then the check.

Measured, and how:
- recovery of a fault: from the moment it hit until, on every partition of the stream's
  topic, the group has committed a record that arrived after the fault (a partition that got
  none after it: until it is caught up). Committed offsets and ends are sampled every
  SAMPLE_S, so a recovery time is known to within about that. For a poison record: until its
  partition's committed offset is past it (it was set aside, the partition went on).
- back: from the hit until the restarted or new instance answers gRPC health SERVING (its
  partitions are open), or the restarted broker answers an admin call.
- inputs never processed: data records (read_committed) of the group's inputs at or after
  its committed offsets, once the group stopped moving.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import TopicPartition

from emeuse.registry import dead_letter_topic
from emeuse.runtime.unreadable import Unreadable
from tests.chaos.cluster import Broker, Cluster
from tests.chaos.faults import BROKER_FAULTS, Fault, Faults
from tests.chaos.kafka_io import (
    Offsets,
    Offsetting,
    Output,
    Producer,
    partitions_of,
    read_outputs,
    records_after,
)
from tests.chaos.oracle import original_id
from tests.chaos.scenario import Row, Scenario, Workload
from tests.integration.harness import Platform, emeuse, free_port

SAMPLE_S = 0.5
# However long a slow group keeps moving, the round stops waiting for it after this.
DRAIN_AT_MOST_S = 1800.0
# Before the stream ends, its tail waits for the last fault: meanwhile it trickles at this
# rate, and after each fault AFTER_FAULT_PER_PARTITION records per partition of the stream go
# at once, so every fault is followed by input to measure recovery on. (The tail used to
# trickle at 20/s, spent in 8 s: a fault later than that, often the broker's kill and its
# 25-60 s restart, was followed by no input until the next fault's, and its recovery was
# measured to that.)
TRICKLE_PER_S = 2.0
# Outputs still coming (timers firing late) are waited for while their count grows, up to
# this long after the inputs were committed; the report says when they were all there.
OUTPUTS_STALLED_S = 60.0
OUTPUTS_AT_MOST_S = 900.0
AFTER_FAULT_PER_PARTITION = 2
# The trickle stops while no more is left than for this many faults' records.
KEPT_FOR_FAULTS = 4


@dataclass
class RoundConfig:
    seed: int
    patients: int
    readings: int
    instances: int = 3
    stream_s: float = 90.0  # the stream's planned length; faults go on while it runs
    fault_gap_s: tuple[float, float] = (3.0, 6.0)
    short: bool = False  # one of each fault, in a seeded order, then stop
    broker_faults: bool = False
    faults: bool = True  # False: a reference round, the stream alone (oracle.py)
    drain_timeout_s: float = 180.0  # with no commit moving
    kinds: tuple[str, ...] | None = None  # the faults drawn from (None: every kind)
    service_env: dict[str, str] = field(default_factory=dict)  # Platform.env of the instances
    port: Callable[[], int] = free_port  # the instances' gRPC and /metrics ports


@dataclass
class Sample:
    t: float
    committed: Offsets
    ends: Offsets


@dataclass
class RoundReport:
    seed: int
    service: str
    app_id: str
    workdir: Path
    rows: list[Row] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    unprocessed: dict[TopicPartition, int] = field(default_factory=dict)
    produced: int = 0
    produce_failures: int = 0
    crashes: dict[str, list[int | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Outputs no plain Kafka reader can decode (named by their place): a defect, never passed.
    unreadable_outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Everything read back from the output topics and dead letters (the oracle's source).
    outputs: dict[str, list[Output]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            all(row.ok for row in self.rows)
            and not self.unprocessed
            and not self.produce_failures
            and not self.unreadable_outputs
            and all(f.recovery_s is not None for f in self.faults)
        )


class Monitor(threading.Thread):
    """Samples the group's committed offsets and the inputs' ends every SAMPLE_S."""

    def __init__(self, offsets: Offsetting, group: str, inputs: list[TopicPartition]) -> None:
        super().__init__(name="chaos-monitor", daemon=True)
        self.offsets, self.group, self.inputs = offsets, group, inputs
        self.samples: list[Sample] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_S):
            self.sample(retry_s=2 * SAMPLE_S)

    def sample(self, retry_s: float) -> None:
        # A new admin client's first asks after a broker restart can fail for a moment (no
        # leader, no coordinator yet): asked again for retry_s before the sample is skipped.
        try:
            t = time.monotonic()
            ends = self.offsets.ends(self.inputs, retry_s=retry_s)
            committed = self.offsets.committed(self.group, self.inputs, retry_s=retry_s)
        except Exception:
            return  # the broker is down: no sample
        self.samples.append(Sample(t, committed, ends))

    def stop(self) -> None:
        """Stop, with a last sample: the commits that ended the round are in it."""
        self.stopping.set()
        if self.is_alive():
            self.join(5)
        self.sample(retry_s=30)

    def save(self, path: Path, since: float) -> None:
        """The samples, one JSON line each (seconds from `since`), to see a recovery after."""
        wall_offset = time.time() - time.monotonic()
        with path.open("w") as out:
            for s in self.samples:
                line = {
                    "t": round(s.t - since, 2),
                    "wall": time.strftime("%H:%M:%S", time.localtime(s.t + wall_offset)),
                    "committed": {
                        f"{tp.topic}[{tp.partition}]": o for tp, o in s.committed.items()
                    },
                    "ends": {f"{tp.topic}[{tp.partition}]": o for tp, o in s.ends.items()},
                }
                out.write(json.dumps(line) + "\n")

    def recovery(self, fault: Fault, stream: list[TopicPartition]) -> float | None:
        """Seconds from the fault until every partition of the stream has had a record that
        arrived after the fault committed (a partition that got none after it: until it is
        caught up). The ends are taken at the first sample after the fault, so a record
        handled before the fault never counts."""
        after = [s for s in self.samples if s.t >= fault.at]
        if not after:
            return None
        base, final = after[0], after[-1]
        if fault.poison is not None:
            # Any sample taken after the hit counts, the first too: a poison record set aside
            # within half a second, right before the round ends, has no second sample.
            tp, offset = fault.poison
            return next((s.t - fault.at for s in after if s.committed[tp] > offset), None)
        # The first sample counts too: at it only "caught up, and nothing arrived after"
        # can hold. A broker's kill late in a round can leave one sample after it, the last.
        for s in after:
            if all(_recovered(tp, s, base, final) for tp in stream):
                return s.t - fault.at
        return None

    def why_not_recovered(self, fault: Fault, stream: list[TopicPartition]) -> str:
        """For a fault never seen recovered: what the samples after it showed."""
        after = [s for s in self.samples if s.t >= fault.at]
        if not after:
            return "no sample of offsets after the fault: the checker could not read them"
        base, final = after[0], after[-1]
        behind = [
            f"{tp.partition}: committed {final.committed[tp]}, end {base.ends[tp]} -> "
            f"{final.ends[tp]}"
            for tp in stream
            if not _recovered(tp, final, base, final)
        ]
        return (
            f"{len(after)} samples from +{base.t - fault.at:.1f} s to +{final.t - fault.at:.1f} s;"
            f" partitions behind at the last: {'; '.join(behind) or 'none'}"
        )


def _recovered(tp: TopicPartition, s: Sample, base: Sample, final: Sample) -> bool:
    """The group committed, by sample s, a record of tp that arrived after the base sample;
    or no record arrived after it and the group is caught up."""
    return s.committed[tp] > base.ends[tp] or (
        final.ends[tp] == base.ends[tp] and s.committed[tp] >= s.ends[tp]
    )


class Stream(threading.Thread):
    """Produces the stream at a steady pace; its tail waits for the faults to be over."""

    def __init__(
        self, producer: Producer, workload: Workload, seconds: float, per_fault: int
    ) -> None:
        super().__init__(name="chaos-stream", daemon=True)
        self.per_fault = per_fault
        self.producer, self.records = producer, workload.stream
        self.rate = max(1.0, len(self.records) / seconds)
        self.tail = min(len(self.records) // 2, max(100, len(self.records) // 10))
        self.faults_over = threading.Event()
        self.error: BaseException | None = None
        self._in_tail = False
        self._released = threading.Semaphore(0)

    def after_fault(self) -> None:
        """Let `per_fault` records of the tail go now (none while the body still flows)."""
        if self._in_tail:
            for _ in range(self.per_fault):
                self._released.release()

    def run(self) -> None:
        try:
            body = len(self.records) - self.tail
            next_due = time.monotonic()
            for i, record in enumerate(self.records):
                if i >= body and not self.faults_over.is_set():
                    self._in_tail = True
                    trickle = len(self.records) - i > KEPT_FOR_FAULTS * self.per_fault
                    while not (
                        self._released.acquire(timeout=1 / TRICKLE_PER_S)
                        or trickle
                        or self.faults_over.is_set()
                    ):
                        pass
                    next_due = time.monotonic()
                elif (delay := next_due - time.monotonic()) > 0:
                    time.sleep(delay)
                self.producer.send(*record)
                next_due += 1 / self.rate
            self.producer.flush()
        except BaseException as exc:
            self.error = exc


def fault_plan(kinds: tuple[str, ...], rng: random.Random, short: bool) -> list[str]:
    """One of each in a seeded order; a full round then draws more at random (see run)."""
    plan = list(kinds)
    rng.shuffle(plan)
    if not short and BROKER_FAULTS[0] in plan:
        # The broker's kill comes after the instances have been hurt at least once.
        plan.remove(BROKER_FAULTS[0])
        plan.insert(rng.randrange(len(plan) // 2, len(plan) + 1), BROKER_FAULTS[0])
    return plan


def wait_committed(
    offsets: Offsetting, group: str, tps: list[TopicPartition], timeout: float
) -> tuple[Offsets, Offsets]:
    """Until the group's commits reach the inputs' ends, or have not moved for `timeout`
    (a group still catching up is waited for, one that stopped is not): (committed, ends)."""
    committed: Offsets = {}
    ends: Offsets = {}
    last_move = started = time.monotonic()
    while time.monotonic() - last_move < timeout and time.monotonic() - started < DRAIN_AT_MOST_S:
        try:
            ends = offsets.ends(tps)
            now = offsets.committed(group, tps)
        except Exception:
            time.sleep(1)
            continue
        if now != committed:
            last_move = time.monotonic()
        committed = now
        if all(committed[tp] >= ends[tp] for tp in tps):
            return committed, ends
        # Only control records (transaction markers) left after the commits: caught up too.
        if time.monotonic() - last_move > 5 and not records_after(
            offsets.bootstrap, committed, ends
        ):
            return committed, ends
        time.sleep(0.5)
    return committed, ends


def run_round(
    config: RoundConfig,
    scenario: Scenario,
    bootstrap: str,
    workdir: Path,
    broker: Broker | None = None,
    log: object = print,
    workload: Workload | None = None,
) -> RoundReport:
    """One round; `workload` given, its records instead of the scenario's build (the same
    records for a reference round and the faulted round compared with it)."""

    def say(line: str) -> None:
        (log if callable(log) else print)(line)
        sys.stdout.flush()  # progress shows as it happens, in a log file too

    started = time.monotonic()
    rng = random.Random(config.seed)
    app_id = f"chaos-{scenario.service}-s{config.seed}-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True, exist_ok=True)
    report = RoundReport(config.seed, scenario.service, app_id, workdir)
    created = emeuse("topics", "create", bootstrap=bootstrap)
    if created.returncode != 0:
        raise RuntimeError(f"emeuse topics create: {created.stderr}")
    platform = Platform(bootstrap, workdir, env=config.service_env)
    offsets = Offsetting(bootstrap)
    inputs = partitions_of(scenario.inputs)
    stream_tps = partitions_of([scenario.stream_topic])
    dead_letters = dead_letter_topic(scenario.service)
    outputs = [*scenario.outputs, dead_letters]
    # The group starts where the topics end now: earlier rounds' records are not its work.
    offsets.commit(app_id, offsets.ends(inputs))
    out_start = offsets.ends(partitions_of(outputs))

    cluster = Cluster(platform, scenario.service, app_id, port=config.port)
    members = [cluster.add() for _ in range(config.instances)]
    producer = Producer(bootstrap)
    # A client of its own: the round's waits never hold up a sample, nor a sample them.
    monitor = Monitor(Offsetting(bootstrap), app_id, inputs)
    try:
        for member in members:
            member.start()
        cluster.supervise()
        up_s = cluster.wait_serving(members)
        say(f"[{app_id}] {len(members)} instances serving after {up_s:.1f} s")

        if workload is None:
            workload = scenario.build(rng, config.patients, config.readings)
        report.notes += workload.notes
        for phase in (workload.setup, workload.then):
            if phase and not _apply(producer, phase, offsets, app_id, inputs, config):
                report.notes.append("enrolments not all applied before the stream")
        setup = len(workload.setup) + len(workload.then)
        say(f"[{app_id}] {setup} enrolments applied; stream starts")

        monitor.start()
        per_fault = AFTER_FAULT_PER_PARTITION * scenario.stream_topic.partitions
        stream = Stream(producer, workload, config.stream_s, per_fault)
        faults = Faults(cluster, broker, bootstrap, scenario.stream_topic, workload.keys, rng)
        kinds = config.kinds or faults.kinds()
        plan = fault_plan(kinds, rng, config.short)
        stream.start()
        stream_started = time.monotonic()
        while config.faults:
            time.sleep(rng.uniform(*config.fault_gap_s))
            if plan:
                kind = plan.pop(0)
            elif config.short or time.monotonic() - stream_started > config.stream_s:
                break
            else:
                kind = rng.choice(kinds)
            fault = faults.inject(kind)
            stream.after_fault()
            report.faults.append(fault)
            say(
                f"[{app_id}] fault {len(report.faults)}: {fault.kind} {fault.target} "
                f"{fault.detail} back={_s(fault.back_s)}"
            )
        stream.faults_over.set()
        stream.join()
        if stream.error is not None:
            raise stream.error
        say(f"[{app_id}] stream produced; waiting for the group to commit its inputs")
        committed, ends = wait_committed(offsets, app_id, inputs, config.drain_timeout_s)
        if workload.answers:
            say(f"[{app_id}] stream handled; {len(workload.answers)} answers")
            for record in workload.answers:
                producer.send(*record)
            producer.flush()
            committed, ends = wait_committed(offsets, app_id, inputs, config.drain_timeout_s)
        report.produced = producer.sent.count()  # the enrolments, the stream, the answers
        report.produce_failures = producer.sent.failed
        report.unprocessed = records_after(bootstrap, committed, ends)
        monitor.stop()
        monitor.save(workdir / "offsets.jsonl", started)
        for fault in report.faults:
            fault.recovery_s = monitor.recovery(fault, stream_tps)
            if fault.recovery_s is None and fault.poison is None:
                fault.notes.append(monitor.why_not_recovered(fault, stream_tps))

        unreadable: list[Unreadable] = []
        found, complete_s = _read_complete(
            bootstrap, outputs, out_start, scenario, workload, unreadable
        )
        report.notes.append(
            f"outputs all there {complete_s:.0f} s after the inputs were committed"
            if complete_s is not None
            else "outputs never all there (see the rows)"
        )
        report.unreadable_outputs = sorted({str(u) for u in unreadable})
        report.outputs = found
        report.rows = scenario.check(workload, found)
        report.rows.append(
            _poison_row(report.faults, found[dead_letters.name], producer, workload.set_aside)
        )
        report.crashes = {
            i.name: i.unexpected_exits for i in cluster.instances.values() if i.unexpected_exits
        }
    finally:
        monitor.stopping.set()
        cluster.stop_all()
        # A broker that did not come back must not hide, behind a flush timeout, why.
        with contextlib.suppress(Exception):
            producer.producer.close(timeout=10)
        offsets.close()
        monitor.offsets.close()
        report.seconds = time.monotonic() - started
    return report


def _apply(
    producer: Producer,
    records: list,
    offsets: Offsetting,
    group: str,
    inputs: list[TopicPartition],
    config: RoundConfig,
) -> bool:
    """Produce `records` and wait for the group to commit them: whether it did."""
    for record in records:
        producer.send(*record)
    producer.flush()
    committed, ends = wait_committed(offsets, group, inputs, config.drain_timeout_s)
    return all(committed[tp] >= ends[tp] for tp in inputs)


def _read_complete(
    bootstrap: str,
    outputs: list,
    start: Offsets,
    scenario: Scenario,
    workload: Workload,
    unreadable: list[Unreadable],
) -> tuple[dict[str, list[Output]], float | None]:
    """Outputs once the expected number of ours is there (timers may still be running), or
    once their count has stopped growing for OUTPUTS_STALLED_S past the timers' time (a
    loss), or after OUTPUTS_AT_MOST_S; then a few seconds more, for late duplicates to show.
    Also how long after the call they were all there (None: never). Those no client can
    decode are put in `unreadable` (from the last read)."""
    keys = {k.encode() for k in workload.keys}
    began = grew = time.monotonic()
    seen, complete_s = -1, None
    while True:
        found = read_outputs(bootstrap, outputs, start)
        ours = sum(1 for spec in scenario.outputs for o in found[spec.name] if o.key in keys)
        now = time.monotonic()
        if ours >= workload.outputs_expected:
            complete_s = now - began
            break
        if ours > seen:
            seen, grew = ours, now
        stalled = now - grew > max(OUTPUTS_STALLED_S, scenario.timers_s + OUTPUTS_STALLED_S)
        if stalled or now - began > OUTPUTS_AT_MOST_S:
            break
        time.sleep(2)
    time.sleep(scenario.timers_s + 2)
    return read_outputs(bootstrap, outputs, start, unreadable=unreadable), complete_s


def _poison_row(
    faults: list[Fault], letters: list[Output], producer: Producer, set_aside: set[str]
) -> Row:
    """Poison records dead-lettered once each; a record of the workload set aside is
    unexpected, unless the scenario's own check judges it (`set_aside`, by ce_id)."""
    letters = [o for o in letters if original_id(o) not in set_aside]
    injected = {(f.poison[0].topic, f.poison[0].partition, f.poison[1]) for f in faults if f.poison}
    row = Row("poison records dead-lettered", len(injected))
    coords = Counter(
        (o.message.source_topic, o.message.source_partition, o.message.source_offset)
        for o in letters
    )
    row.seen = len(coords.keys() & injected)
    row.lost = len(injected - coords.keys())
    ids = Counter(
        o.event_id
        for o in letters
        if (o.message.source_topic, o.message.source_partition, o.message.source_offset) in injected
    )
    row.dup_by_id = sum(n - 1 for n in ids.values())
    row.dup_by_meaning = sum(n - 1 for c, n in coords.items() if c in injected)
    # A record of the workload set aside is an input lost to the service.
    row.unexpected = sum(n for c, n in coords.items() if producer.sent.contains(*c))
    return row


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def short_round(seed: int, *, broker_faults: bool) -> RoundConfig:
    """One of each fault on a small stream (make test's round, and --short): 2-3 minutes."""
    return RoundConfig(
        seed=seed,
        patients=30,
        readings=1500,
        stream_s=50.0,
        short=True,
        broker_faults=broker_faults,
    )
