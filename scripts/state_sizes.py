#!/usr/bin/env python3
"""What home's, access's, prevention's, coordination's and evaluation's state costs per
100,000 keys: in memory and in their stores on disk (docs/operations.md#sizing-scaling-upgrades).

Each service's own handlers run in real kernel transactions (`emeuse.kernel.tx.Tx`, no
broker), over real partition stores (`PartitionStore`, RocksDB) on six partitions, and each
transaction is stored as the kernel commits it: values framed by the table's codec (lz4
above 512 bytes), with the due-index of its timers. What a handler publishes on one of the
service's own inputs (coordination's re-keyed entries, access's requests) is handled in
turn, where the broker would route it. Then, per service:
- values and bytes: what its changelog holds once compacted (the last value of each key);
- disk: the stores' directories after a flush and a full compaction;
- timers: what the kernel keeps in memory for the due-index (`PartitionTask._load_timers`
  after a restart), measured with tracemalloc;
- decoded: the values decoded, as Python objects (tracemalloc on a sample of each table,
  scaled to its count): what holding them all would cost. The kernel does not (each read
  decodes one; a partition hook's scan goes one by one), but a service's share of it is its
  working set under load.
RocksDB's own memory (memtables, block cache) is per store, not per key, and not counted.

    .venv/bin/python scripts/state_sizes.py [KEYS] [SERVICE...]

KEYS defaults to 100,000 per service (homes, people, requests); scenarios are seeded.
`home-month` is a home's month of reports (its bounded lists full), not in the default run:
name it, with a few hundred homes (0.4 s of CPU each).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import structlog
from google.protobuf.message import Message
from rocksdict import Options, Rdict

from emeuse.kernel.declare import Processor
from emeuse.kernel.framing import Framed
from emeuse.kernel.outputs import Origin, OutRecord
from emeuse.kernel.store import PartitionStore
from emeuse.kernel.task import CACHE_ENTRIES, PartitionTask
from emeuse.kernel.tx import DELETED, Tx
from emeuse.registry import PARTITIONS, TopicSpec, dead_letter_topic
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.envelope import timestamp
from emeuse.runtime.events import Event

EXPERIMENT = "exp-sizing"
# Values of each table decoded to measure their size in memory (see measure).
SAMPLE = 5_000


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


class Instance:
    """Every partition of one service, held here, each in its own store under `root`."""

    def __init__(self, processor: Processor, root: Path) -> None:
        self.processor = processor
        self.root = root
        self.codecs = {table.name: Framed(table.codec) for table in processor.tables}
        # Decoded values of codecs that share them, as each task caches them (CACHE_ENTRIES).
        self.cache: dict[int, dict[tuple[str, str], Any]] = {p: {} for p in range(PARTITIONS)}
        self.stores = {p: PartitionStore(root / f"p{p}") for p in range(PARTITIONS)}
        self.inputs = {spec.name: spec for spec in processor.inputs}
        self.handled = 0
        # What the handlers published (a scenario answers some: a receipt for a message).
        self.published: list[OutRecord] = []
        self.loop = asyncio.new_event_loop()

    def partition_of(self, table: str, key: str) -> int:
        hashed = self.processor.table(table).partition_key(key)
        return expected_partition(hashed.encode(), PARTITIONS)

    def _read(self, partition: int) -> Callable[[str, str], Any]:
        store, cache = self.stores[partition], self.cache[partition]

        def read(table: str, key: str) -> Any:
            cached = cache.get((table, key))
            if cached is not None:
                return cached
            raw = store.get(table, key)
            if raw is None:
                return None
            codec = self.codecs[table]
            value = codec.decode(raw)
            if codec.shared:
                if len(cache) >= CACHE_ENTRIES:
                    cache.pop(next(iter(cache)))
                cache[(table, key)] = value
            return value

        return read

    def _scan(self, partition: int) -> Callable[[str], Iterable[tuple[str, Any]]]:
        store = self.stores[partition]
        return lambda table: (
            (key, self.codecs[table].decode(raw)) for key, raw in store.items(table)
        )

    def _tx(self, partition: int, now: datetime) -> Tx:
        service = self.processor.service
        tx = Tx(
            partition,
            Origin(service, f"emeuse/{service}", EXPERIMENT),
            dead_letter_topic(service),
            self._read(partition),
            self.partition_of,
            self._scan(partition),
        )
        tx.now = now
        return tx

    def send(
        self, spec: TopicSpec, message: Message, when: datetime, territory: str = "55"
    ) -> None:
        """Publish `message` as its producer would (its key, its partition), handled at once."""
        key = spec.record_key(message) or ""
        envelope = env.new_envelope(
            event_type=spec.type_name,
            source=f"emeuse/{spec.owner}",
            subject_pseudonym=getattr(message, spec.subject_field, "") or "",
            territory=env.territory_from_code(territory),
            experiment_id=EXPERIMENT,
            schema_version=spec.schema_version,
            occurred_at=when,
        )
        self.handle(spec, message, envelope, key, when)

    def handle(
        self, spec: TopicSpec, message: Message, envelope: Any, key: str, now: datetime
    ) -> None:
        hashed = spec.partition_key(key.encode(), message) or key.encode()
        partition = expected_partition(hashed, PARTITIONS)
        tx = self._tx(partition, now)
        event = Event(envelope, message, key, spec.name, partition, 0)
        self.loop.run_until_complete(self.processor.inputs[spec](event, tx))
        self._commit(tx)
        self.handled += 1
        self.published.extend(tx.outputs)
        for out in tx.outputs:
            own = self.inputs.get(out.topic)
            if own is not None:
                self.handle(
                    own,
                    own.message.FromString(out.value),
                    env.from_headers(env.header_map(out.headers)),
                    (out.key or b"").decode(),
                    now,
                )

    def fire(self, name: str, key: str, now: datetime) -> datetime | None:
        """Run timer `name` for `key` at `now`, as the kernel does at its deadline; the
        key's next deadline."""
        timer = next(t for t in self.processor.timers if t.name == name)
        partition = self.partition_of(timer.tables[0], key)
        tx = self._tx(partition, now)
        self.loop.run_until_complete(timer.fire(key, tx))
        self._commit(tx)
        self.published.extend(tx.outputs)
        return self.deadline(name, key, now)

    def deadline(self, name: str, key: str, now: datetime) -> datetime | None:
        timer = next(t for t in self.processor.timers if t.name == name)
        read = self._read(self.partition_of(timer.tables[0], key))
        return timer.due(key, lambda table: read(table, key), now)

    def _commit(self, tx: Tx) -> None:
        """Store the transaction's writes and their keys' deadlines, as the kernel does
        once the transaction committed."""
        values = [
            (table, key, None if value is DELETED else self.codecs[table].encode(value))
            for (table, key), value in tx.writes.items()
        ]
        due = [
            (timer.name, key, ms(timer.due(key, partial(tx.get, key=key), tx.now)))
            for timer in self.processor.timers
            for key in {key for table, key in tx.writes if table in timer.tables}
        ]
        self.stores[tx.partition].apply(values, due)
        cache = self.cache[tx.partition]
        for (table, key), value in tx.writes.items():
            if value is DELETED or not self.codecs[table].shared:
                cache.pop((table, key), None)
            else:
                cache[(table, key)] = value

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        self.loop.close()


@dataclass
class Figures:
    service: str
    drivers: str
    keys: int
    events: int
    build_s: float
    values: dict[str, int]
    table_bytes: dict[str, int]
    disk_bytes: int
    timer_bytes: int
    timers: int
    decoded_bytes: int

    @property
    def value_bytes(self) -> int:
        return sum(self.table_bytes.values())

    def per(self, amount: float) -> float:
        """`amount` for 100,000 keys, in MB."""
        return amount / self.keys * 100_000 / 1e6


def traced(build: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes `build`'s result holds (tracemalloc), and the result, kept alive."""
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    result = build()
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return after - before, result


def data_bytes(path: Path) -> int:
    """The stores' table files (a store's logs, manifest and options, ~40 kB, left out)."""
    return sum(f.stat().st_size for f in path.rglob("*.sst"))


def measure(instance: Instance, service: str, drivers: str, keys: int, build_s: float) -> Figures:
    values: dict[str, int] = {}
    table_bytes: dict[str, int] = {}
    for store in instance.stores.values():
        for table in instance.codecs:
            for key, raw in store.items(table):
                values[table] = values.get(table, 0) + 1
                # As the changelog holds it once compacted: its key, then its value.
                table_bytes[table] = (
                    table_bytes.get(table, 0) + len(table) + 1 + len(key) + len(raw)
                )

    # Decoding every value at once would take gigabytes here: a sample of each table's
    # values (every n-th), scaled up by its count.
    def decoded(table: str, every: int) -> list[Any]:
        return [
            instance.codecs[table].decode(raw)
            for store in instance.stores.values()
            for i, (_, raw) in enumerate(store.items(table))
            if i % every == 0
        ]

    decoded_bytes = 0
    for name, count in values.items():
        every = max(1, count // SAMPLE)
        size, held = traced(partial(decoded, name, every))
        decoded_bytes += round(size / max(1, len(held)) * count)
        del held
    # The kernel's own timers, loaded as a restarted instance loads them.
    kernel = SimpleNamespace(
        service=service,
        input_topics=[],
        timers={timer.name: timer for timer in instance.processor.timers},
    )

    tasks = [PartitionTask(cast(Any, kernel), p) for p in instance.stores]

    def timers() -> None:
        for task in tasks:
            task._store = instance.stores[task.partition]
            task._load_timers()

    timer_bytes, _ = traced(timers)
    pending = sum(len(task._deadlines) for task in tasks)
    instance.close()
    for p in range(PARTITIONS):
        db = Rdict(str(instance.root / f"p{p}"), Options(raw_mode=True))
        db.flush()
        db.compact_range(None, None)
        db.close()
    return Figures(
        service,
        drivers,
        keys,
        instance.handled,
        build_s,
        values,
        table_bytes,
        data_bytes(instance.root),
        timer_bytes,
        pending,
        decoded_bytes,
    )


# -- scenarios: each builds `keys` keys' state through the service's handlers ---------------


def pseudonyms(rng: random.Random, count: int) -> Iterator[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for _ in range(count):
        yield "psn-" + "".join(rng.choices(alphabet, k=32))


SCENARIOS: dict[str, tuple[str, Callable[[Path, int, random.Random], Instance]]] = {}


def scenario(
    name: str, drivers: str
) -> Callable[
    [Callable[[Path, int, random.Random], Instance]], Callable[[Path, int, random.Random], Instance]
]:
    def register(
        build: Callable[[Path, int, random.Random], Instance],
    ) -> Callable[[Path, int, random.Random], Instance]:
        SCENARIOS[name] = (drivers, build)
        return build

    return register


def homes(root: Path, keys: int, rng: random.Random, days: int) -> Instance:
    """Each home configured, then `days` days of its devices' reports (motion through the
    day, the door, the temperature) and of a home aide's visit, checked in and out."""
    from emeuse.registry import (
        HOME_CONFIGURED,
        SENSOR_EVENT_REPORTED,
        VISIT_ENDED,
        VISIT_PLANNED,
        VISIT_STARTED,
    )
    from services.home.processing import PROCESSOR
    from tests.unit.home.homes import at, door, home, motion, temperature
    from tests.unit.home.test_visits import arrived, left, planned

    def some_id(prefix: str) -> str:
        return f"{prefix}-{rng.getrandbits(128):032x}"

    instance = Instance(PROCESSOR, root)
    for resident in pseudonyms(rng, keys):
        instance.send(HOME_CONFIGURED, home(resident_pseudonym=resident), at("06:00"))
        for day in range(days):
            reports = [
                motion(at(hh_mm, day))
                for hh_mm in ("07:05", "09:30", "12:10", "15:00", "18:20", "21:40")
            ] + [door(at("10:00", day)), temperature(at("08:00", day), rng.uniform(17, 23))]
            for report in sorted(reports, key=lambda r: r.occurred_at.ToDatetime()):
                report.resident_pseudonym = resident
                report.sensor_event_id = some_id("se")
                instance.send(SENSOR_EVENT_REPORTED, report, report.occurred_at.ToDatetime(UTC))
            visit = some_id("visit")
            plan = planned(visit)
            plan.planned_start.CopyFrom(timestamp(at("08:30", day)))
            for spec, message, when in (
                (VISIT_PLANNED, plan, at("07:00", day)),
                (VISIT_STARTED, arrived(at("08:35", day), visit), at("08:35", day)),
                (VISIT_ENDED, left(at("09:20", day), visit), at("09:20", day)),
            ):
                message.resident_pseudonym = resident
                instance.send(spec, message, when)
    return instance


scenario("home", "a home, a day of reports")(partial(homes, days=1))
# Its ids already seen, visits and door events are kept up to a bound: a month reaches it.
scenario("home-month", "a home, a month of reports")(partial(homes, days=30))


@scenario("prevention", "a person enrolled")
def people(root: Path, keys: int, rng: random.Random) -> Instance:
    """Each person enrolled in an age band (the national reminders it plans), one in
    twenty opting out of SMS; each due message sent when the timer fires over the next
    year, each with a delivery receipt."""
    from emeuse.prevention.v1.prevention_events_pb2 import (
        DeliveryStatus,
        MessageDeliveryRequested,
    )
    from emeuse.registry import (
        DELIVERY_RECEIPT_REPORTED,
        MESSAGE_DELIVERY_REQUESTED,
        OPT_OUT_RECORDED,
        PERSON_ENROLLED,
    )
    from services.prevention.campaigns import Directory
    from services.prevention.handlers import Delays
    from services.prevention.processing import STEPS, processor
    from tests.unit.prevention.people import NOW, enrolment, opt_out, receipt

    directory = Directory()
    directory.ready.set()  # no campaign: the national reminders only
    instance = Instance(processor(directory, Delays()), root)
    until = NOW + timedelta(days=365)
    for person in pseudonyms(rng, keys):
        start = rng.randrange(0, 95, 5)
        instance.send(PERSON_ENROLLED, enrolment(person, band=(start, start + 4)), NOW)
        if rng.random() < 0.05:
            instance.send(OPT_OUT_RECORDED, opt_out(person, "sms"), NOW + timedelta(hours=1))
        due = instance.deadline(STEPS, person, NOW)
        while due is not None and due <= until:
            instance.published.clear()
            due = instance.fire(STEPS, person, due)
            for out in instance.published:
                if out.topic == MESSAGE_DELIVERY_REQUESTED.name:
                    sent = MessageDeliveryRequested.FromString(out.value)
                    delivered = DeliveryStatus.DELIVERY_STATUS_DELIVERED
                    instance.send(
                        DELIVERY_RECEIPT_REPORTED, receipt(person, sent.message_id, delivered), NOW
                    )
        instance.published.clear()
    return instance


@scenario("coordination", "a person on a timeline")
def timelines(root: Path, keys: int, rng: random.Random) -> Instance:
    """Each person's month across the axes: two prevention receipts; for a third an INR
    alert raised and resolved; for a fifth a consultation asked (re-keyed from its
    territory) and booked; for a tenth a fall at home. One in ten keeps a problem open."""
    from emeuse.registry import (
        ALERT_RAISED,
        ALERT_RESOLVED,
        CONSULTATION_REQUESTED,
        DELIVERY_RECEIPT_REPORTED,
        INCIDENT_RAISED,
        INCIDENT_RESOLVED,
        SLOT_BOOKED,
    )
    from services.coordination.processing import PROCESSOR
    from tests.unit.coordination import stories

    instance = Instance(PROCESSOR, root)
    for n, person in enumerate(pseudonyms(rng, keys)):
        when = stories.at(-rng.uniform(60, 30 * 24 * 60))
        later = when + timedelta(hours=2)
        for i in range(2):
            receipt = stories.receipt(person, f"m-{n}-{i}", when)
            instance.send(DELIVERY_RECEIPT_REPORTED, receipt, when)
        if rng.random() < 0.3:
            instance.send(ALERT_RAISED, stories.alert_raised(person, f"a-{n}", when), when)
            if rng.random() < 0.9:
                instance.send(
                    ALERT_RESOLVED, stories.alert_resolved(person, f"a-{n}", later), later
                )
        if rng.random() < 0.2:
            instance.send(CONSULTATION_REQUESTED, stories.requested(person, f"r-{n}", when), when)
            if rng.random() < 0.9:
                booked = stories.booked(person, f"r-{n}", f"b-{n}", later)
                instance.send(SLOT_BOOKED, booked, later)
        if rng.random() < 0.1:
            instance.send(INCIDENT_RAISED, stories.incident(person, f"i-{n}", when), when)
            if rng.random() < 0.9:
                resolved = stories.incident_resolved(person, f"i-{n}", later)
                instance.send(INCIDENT_RESOLVED, resolved, later)
    return instance


@scenario("evaluation", "a person counted")
def indicators(root: Path, keys: int, rng: random.Random) -> Instance:
    """A month of each person's events as the services publish them: two readings (one
    in twenty a point-of-care INR), for a third an alert (acknowledged), a screening
    reminder delivered (acted on by a third), for a tenth a consultation asked and booked."""
    from emeuse.access.v1.access_events_pb2 import ConsultationRequested, Profession, SlotBooked
    from emeuse.chronic.v1.chronic_events_pb2 import (
        AlertAcknowledged,
        AlertRaised,
        AlertSeverity,
        ReadingRecorded,
    )
    from emeuse.prevention.v1.prevention_events_pb2 import (
        DeliveryReceiptReported,
        DeliveryStatus,
        MessageDeliveryRequested,
        PreventionActionKind,
        PreventionActionRecorded,
    )
    from emeuse.registry import (
        ALERT_ACKNOWLEDGED,
        ALERT_RAISED,
        CONSULTATION_REQUESTED,
        DELIVERY_RECEIPT_REPORTED,
        MESSAGE_DELIVERY_REQUESTED,
        PREVENTION_ACTION_RECORDED,
        READING_RECORDED,
        SLOT_BOOKED,
    )
    from services.evaluation.processing import PROCESSOR
    from tests.unit.evaluation.scenario import MARCH, Sent, completed, seconds

    instance = Instance(PROCESSOR, root)

    def send(spec: TopicSpec, message: Message, key: str, territory: str, when: datetime) -> None:
        done = completed(Sent(spec, message, key, EXPERIMENT, territory, when)).message
        instance.send(spec, done, when, territory)

    for n, person in enumerate(pseudonyms(rng, keys)):
        territory = rng.choice(("55", "52", "54"))
        when = MARCH + timedelta(minutes=rng.uniform(0, 20 * 24 * 60))
        for i in range(2):
            reading = ReadingRecorded(
                reading_id=f"r-{n}-{i}",
                patient_pseudonym=person,
                loinc_code="34714-6",
                point_of_care=i == 0 and rng.random() < 0.05,
            )
            send(READING_RECORDED, reading, person, territory, when + timedelta(hours=i))
        if rng.random() < 0.3:
            alert = AlertRaised(
                alert_id=f"a-{n}",
                patient_pseudonym=person,
                severity=AlertSeverity.ALERT_SEVERITY_CRITICAL,
                rule="inr.above_range",
                loinc_code="34714-6",
                reading_ids=[f"r-{n}-1"],
                measurement_to_alert=seconds(120),
            )
            send(ALERT_RAISED, alert, person, territory, when + timedelta(hours=1))
            ack = AlertAcknowledged(
                alert_id=f"a-{n}", patient_pseudonym=person, time_to_acknowledge=seconds(600)
            )
            send(ALERT_ACKNOWLEDGED, ack, person, territory, when + timedelta(hours=2))
        reminder = MessageDeliveryRequested(
            message_id=f"m-{n}",
            person_pseudonym=person,
            channel="sms",
            attempt=1,
            programme="screening.colorectal",
            requested_at=timestamp(when),
        )
        send(MESSAGE_DELIVERY_REQUESTED, reminder, person, territory, when)
        delivered = DeliveryReceiptReported(
            receipt_id=f"rc-{n}",
            message_id=f"m-{n}",
            person_pseudonym=person,
            status=DeliveryStatus.DELIVERY_STATUS_DELIVERED,
        )
        send(DELIVERY_RECEIPT_REPORTED, delivered, person, territory, when)
        if rng.random() < 0.3:
            done = PreventionActionRecorded(
                action_id=f"kit-{n}",
                person_pseudonym=person,
                programme="screening.colorectal",
                kind=PreventionActionKind.PREVENTION_ACTION_KIND_SCREENING_DONE,
                acted_at=timestamp(when + timedelta(days=2)),
            )
            send(PREVENTION_ACTION_RECORDED, done, person, territory, when + timedelta(days=2))
        if rng.random() < 0.1:
            asked = ConsultationRequested(
                request_id=f"q-{n}",
                territory=territory,
                patient_pseudonym=person,
                profession=Profession.PROFESSION_GP,
                requested_at=timestamp(when),
            )
            send(CONSULTATION_REQUESTED, asked, territory, territory, when)
            booked = SlotBooked(
                booking_id=f"b-{n}",
                territory=territory,
                request_id=f"q-{n}",
                patient_pseudonym=person,
                slot_id=f"s-{n}",
            )
            send(SLOT_BOOKED, booked, territory, territory, when + timedelta(hours=3))
    return instance


@scenario("access", "a request (booked)")
def agendas(root: Path, keys: int, rng: random.Random) -> Instance:
    """The Meuse's agenda: 200 practitioners, each publishing the next day's twenty-minute
    slots every day (up to 24, as many as that day's requests need), and that day's
    requests (a routine GP consultation from a patient's home), matched to a free slot as
    they come; `keys` requests in all."""
    from emeuse.registry import (
        AVAILABILITY_PUBLISHED,
        CONSULTATION_REQUESTED,
        PRACTITIONER_REGISTERED,
    )
    from services.access.config import AccessSettings
    from services.access.processing import processor
    from tests.unit.access.meuse import (
        BAR_LE_DUC,
        COMMERCY,
        COORDINATORS,
        DELAYS,
        NOW,
        STENAY,
        VERDUN,
        availability,
        consultation,
        practitioner,
    )

    async def no_summary(patient: str) -> None:
        return None

    settings = AccessSettings(
        service=cast(Any, None),
        chronic_grpc="127.0.0.1:50052",
        booking_delays=DELAYS,
        coordinators=COORDINATORS,
    )
    instance = Instance(processor(settings, no_summary), root)
    towns = (BAR_LE_DUC, VERDUN, COMMERCY, STENAY)
    staff = [f"gp-{i:03d}" for i in range(200)]
    for i, gp in enumerate(staff):
        instance.send(PRACTITIONER_REGISTERED, practitioner(gp, towns[i % len(towns)]), NOW)
    per_day = len(staff) * 24
    asked, day = 0, 0
    while asked < keys:
        today = NOW + timedelta(days=day)
        todays = min(per_day, keys - asked)
        for gp in staff:
            slots = range(-(-todays // len(staff)))
            starts = [today + timedelta(days=1, hours=8, minutes=20 * s) for s in slots]
            instance.send(AVAILABILITY_PUBLISHED, availability(gp, *starts), today)
        for _ in range(todays):
            when = today + timedelta(minutes=rng.uniform(0, 600))
            request = consultation(f"req-{asked}", who=f"p-{asked}", requested_at=when)
            request.requested_at.CopyFrom(timestamp(when))
            instance.send(CONSULTATION_REQUESTED, request, when)
            asked += 1
        day += 1
    return instance


def run(name: str, keys: int, root: Path) -> Figures:
    drivers, build = SCENARIOS[name]
    # CPU time, not wall time: the machine is shared.
    started = time.process_time()
    instance = build(root / name, keys, random.Random(55))  # noqa: S311 (a seeded scenario)
    return measure(instance, name, drivers, keys, time.process_time() - started)


def table(figures: list[Figures]) -> str:
    lines = [
        "| service | a key is | keys | events | values | changelog MB | disk MB | timers MB "
        "| decoded MB | build, CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.service} | {f.drivers} | {f.keys:,} | {f.events:,} "
            f"| {sum(f.values.values()):,} | {f.per(f.value_bytes):.1f} "
            f"| {f.per(f.disk_bytes):.1f} "
            f"| {f.per(f.timer_bytes):.1f} ({f.timers:,}) | {f.per(f.decoded_bytes):.1f} "
            f"| {f.build_s:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    keys = int(argv[0].replace(",", "").replace("_", "")) if argv else 100_000
    names = argv[1:] or [name for name in SCENARIOS if name != "home-month"]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        print(f"unknown services {sorted(unknown)}; one of {list(SCENARIOS)}", file=sys.stderr)
        return 2
    # The handlers' logs (one or more per event) would cost more than the handlers.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    root = Path(tempfile.mkdtemp(prefix="emeuse-sizing-"))
    results = []
    try:
        for name in names:
            results.append(run(name, keys, root))
            shutil.rmtree(root / name, ignore_errors=True)
            done = results[-1]
            for table_name, count in done.values.items():
                print(
                    f"  {name} {table_name}: {count:,} values, "
                    f"{done.per(done.table_bytes[table_name]):.1f} MB per 100,000 keys",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("MB per 100,000 keys (timers: the due-index held in memory, how many)")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
