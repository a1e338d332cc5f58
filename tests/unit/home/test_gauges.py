"""The offline-devices gauge: devices with an open offline incident in the homes of the
partitions an instance holds, by territory, right from the moment it opens them (a
restart, a rebalance), then kept as batches commit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.message import Message

from emeuse.home.v1.home_events_pb2 import SensorKind
from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import DELETED, Tx
from emeuse.registry import (
    HOME_CONFIGURED,
    PARTITIONS,
    SENSOR_EVENT_REPORTED,
    TopicSpec,
    dead_letter_topic,
)
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.events import Event
from emeuse.runtime.pseudonym import random_pseudonym
from services.home import figures
from services.home.domain.detection import Incident
from services.home.domain.home import HomeState
from services.home.metrics import HELD
from services.home.processing import HOMES, PROCESSOR, home_deadline, take_due_steps
from tests.unit.home.homes import ENROLLED_AT, home, report

SILENT_FOR = timedelta(hours=1)
OFFLINE_AT = ENROLLED_AT + SILENT_FOR + timedelta(minutes=1)
DEVICES = 4  # fall detector, motion, door, thermometer (homes.home)


def partition_of(table: str, key: str) -> int:
    return expected_partition(key.encode(), PARTITIONS)


class Partitions:
    """Committed homes of every partition; each event and timer in its home's partition."""

    def __init__(self) -> None:
        self.committed: dict[int, dict[str, dict[str, Any]]] = {
            p: {HOMES: {}} for p in range(PARTITIONS)
        }

    def tx(self, resident: str, now: datetime) -> Tx:
        state = self.committed[partition_of(HOMES, resident)]
        tx = Tx(
            partition_of(HOMES, resident),
            Origin("home", "emeuse/home", "tests"),
            dead_letter_topic("home"),
            lambda table, key: state[table].get(key),
            partition_of,
            lambda table: state[table].items(),
        )
        tx.now = now
        return tx

    def commit(self, tx: Tx) -> None:
        state = self.committed[tx.partition]
        for (table, key), value in tx.writes.items():
            if value is DELETED:
                state[table].pop(key, None)
            else:
                state[table][key] = value
        for apply in tx.committed():  # its metrics, as the kernel applies them on commit
            apply()

    def send(
        self, spec: TopicSpec, message: Message, resident: str, now: datetime, territory: str
    ) -> None:
        envelope = env.new_envelope(
            event_type=spec.type_name,
            source="partner/home-tests",
            subject_pseudonym=resident,
            territory=env.territory_from_code(territory),
            experiment_id="exp-domicile",
            schema_version=spec.schema_version,
            occurred_at=now,
        )
        tx = self.tx(resident, now)
        event = Event(envelope, message, resident, spec.name, tx.partition, 0)
        asyncio.run(PROCESSOR.inputs[spec](event, tx))
        self.commit(tx)

    def fire(self, resident: str, now: datetime) -> None:
        """The home's timer at `now`, if anything is due by then."""
        stored = self.committed[partition_of(HOMES, resident)][HOMES]
        due = home_deadline(resident, lambda table: stored.get(resident), now)
        if due is not None and due <= now:
            tx = self.tx(resident, now)
            asyncio.run(take_due_steps(resident, tx))
            self.commit(tx)

    def open_here(self, partitions: range = range(PARTITIONS)) -> None:
        """Tell the partition hooks these partitions are opened, with their stored homes."""
        for p in partitions:
            state = self.committed[p]
            for hook in PROCESSOR.partition_hooks:
                hook.opened(p, lambda table, state=state: list(state[table].items()))

    def close_here(self, partitions: range = range(PARTITIONS)) -> None:
        for p in partitions:
            for hook in PROCESSOR.partition_hooks:
                hook.closed(p)


def gauges() -> dict[str, float]:
    return {t: HELD.value(figures.offline(t)) for t in ("52", "54", "55")}


def enrol(bus: Partitions, resident: str, territory: str) -> None:
    configured = home(
        resident_pseudonym=resident,
        thresholds={"device_offline_after": f"{SILENT_FOR.total_seconds():.0f}s"},
    )
    bus.send(HOME_CONFIGURED, configured, resident, ENROLLED_AT, territory)


def heartbeat(bus: Partitions, resident: str, device_id: str, when: datetime) -> None:
    beat = report(SensorKind.SENSOR_KIND_HEARTBEAT, when, device_id=device_id)
    beat.resident_pseudonym = resident
    bus.send(SENSOR_EVENT_REPORTED, beat, resident, when, "55")


def silent_homes(bus: Partitions, territories: tuple[str, ...]) -> list[str]:
    """Homes enrolled in these territories whose devices never said a word: an hour later
    each of their devices is offline."""
    residents = [random_pseudonym() for _ in territories]
    for resident, territory in zip(residents, territories, strict=True):
        enrol(bus, resident, territory)
    for resident in residents:
        bus.fire(resident, OFFLINE_AT)
    return residents


def recount(bus: Partitions) -> dict[str, float]:
    """What counting every stored home anew gives."""
    counted: dict[str, float] = {}
    for p in range(PARTITIONS):
        for name, value in figures.of_partition(
            lambda table, p=p: bus.committed[p][table].items(), HOMES
        ).items():
            counted[name] = counted.get(name, 0) + value
    return {t: counted.get(figures.offline(t), 0) for t in ("52", "54", "55")}


def test_the_gauge_follows_each_committed_change_by_territory():
    bus = Partitions()
    bus.open_here()
    ana, *_ = silent_homes(bus, ("55", "55", "54"))
    assert gauges() == {"52": 0, "54": DEVICES, "55": 2 * DEVICES}
    heartbeat(bus, ana, "motion-01", OFFLINE_AT + timedelta(minutes=5))  # back: resolved
    assert gauges() == {"52": 0, "54": DEVICES, "55": 2 * DEVICES - 1}
    assert gauges() == recount(bus)


def test_an_instance_opening_its_partitions_again_shows_what_it_showed_before():
    bus = Partitions()
    bus.open_here()
    silent_homes(bus, ("55", "54", "52", "55", "54", "55"))
    before = gauges()
    bus.close_here()  # the instance stops: it holds nothing
    assert set(gauges().values()) == {0}
    bus.open_here()  # and starts again: counted from the stored homes, no new event
    assert gauges() == before == recount(bus)


def test_partitions_split_between_two_instances_add_up_to_one_holding_them_all():
    bus = Partitions()
    bus.open_here()
    residents = silent_homes(bus, ("55",) * 12)
    whole = gauges()
    bus.close_here(range(3, 6))  # a second instance took partitions 3 to 5
    first = gauges()
    bus.close_here(range(0, 3))
    bus.open_here(range(3, 6))
    second = gauges()
    assert {t: first[t] + second[t] for t in whole} == whole
    held_first = sum(1 for r in residents if partition_of(HOMES, r) < 3)
    assert first["55"] == DEVICES * held_first


def test_a_change_committed_after_its_partition_was_let_go_is_left_to_its_next_owner():
    bus = Partitions()
    bus.open_here()
    [ana] = silent_homes(bus, ("55",))
    bus.close_here()
    heartbeat(bus, ana, "motion-01", OFFLINE_AT + timedelta(minutes=5))
    assert gauges()["55"] == 0
    bus.open_here()
    assert gauges()["55"] == DEVICES - 1


def test_the_count_on_the_stored_json_is_the_incidents_own_is_open():
    bus = Partitions()
    [ana] = silent_homes(bus, ("55",))
    heartbeat(bus, ana, "motion-01", OFFLINE_AT + timedelta(minutes=5))
    stored = bus.committed[partition_of(HOMES, ana)][HOMES][ana]
    incidents = HomeState.from_json(stored).incidents.values()
    offline = [i for i in incidents if i.kind == Incident.DEVICE_OFFLINE.value]
    assert len(offline) == DEVICES and not all(i.is_open for i in offline)
    assert figures.of_home(stored) == {"offline:55": sum(1 for i in offline if i.is_open)}
    assert figures.of_home(None) == {}
