"""What the coordination service handles; the kernel runs it (emeuse.kernel).

A person's timeline is one table value keyed by the pseudonym, so it must be written on
the person's partition. Chronic, home and prevention events are keyed by the person: they
go on the timeline at once. Access's events are keyed by territory (partitioned by
"agenda-<territory>"): each is re-keyed by its patient onto
emeuse.coordination.timeline-entry-recorded.v1 (one more hop, in the same transaction as
its offset), which this service reads like any input. After each change the person's open
problems are kept in `territory_people_with_problems` (keyed "<territory>|<pseudonym>",
on the person's partition), what ListPeopleAtRisk reads. The problems come from the open
items the timeline value keeps beside its bounded entries (domain/open_items.py), so an
entry dropped by the bound never closes a problem.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from emeuse.coordination.v1.coordination_events_pb2 import TimelineEntryRecorded
from emeuse.kernel.declare import Lookup, PartitionHook, Processor, Scan, TableSpec, Timer
from emeuse.kernel.sums import Figures, difference
from emeuse.kernel.tx import Tx
from emeuse.prevention.v1.prevention_events_pb2 import MessageScheduled
from emeuse.registry import (
    TIMELINE_ENTRY_RECORDED,
)
from emeuse.runtime.events import Event
from services.coordination import figures
from services.coordination.domain import open_items, problems, timeline
from services.coordination.entries import check_entry, entry_of, stored
from services.coordination.metrics import ENTRIES, HELD, LEFT_OUT, REKEYED
from services.coordination.topics import PERSON_INPUTS, TERRITORY_INPUTS

TIMELINES = "person_timeline"
WITH_PROBLEMS = "territory_people_with_problems"


def problems_key(territory: str, person: str) -> str:
    return f"{territory}|{person}"


def person_of(key: str) -> str:
    """What picks a problems key's partition: the person, as their timeline's."""
    return key.rsplit("|", 1)[1]


def territory_of(key: str) -> str:
    return key.split("|", 1)[0]


def keep_problems(tx: Tx, person: str, before: str, kept: timeline.Timeline) -> None:
    """Keep the person's open problems under their territory (moved if it changed);
    forget a person with none."""
    found = problems.open_problems(kept, tx.now)
    territory = kept["territory"]
    if before and before != territory:
        forget_problems(tx, problems_key(before, person))
    if not territory:
        return
    key = problems_key(territory, person)
    if found:
        store_problems(tx, key, found)
    else:
        forget_problems(tx, key)


def store_problems(tx: Tx, key: str, found: list[problems.Problem]) -> None:
    before = figures.of_stored_problems(key, tx.get(WITH_PROBLEMS, key))
    tx.put(WITH_PROBLEMS, key, [problems.to_dict(p) for p in found])
    counted(tx, before, figures.of_problems(key, found))


def forget_problems(tx: Tx, key: str) -> None:
    before = figures.of_stored_problems(key, tx.get(WITH_PROBLEMS, key))
    tx.delete(WITH_PROBLEMS, key)
    counted(tx, before, {})


def counted(tx: Tx, before: Figures, after: Figures) -> None:
    """The gauges follow a stored value's change once its batch commits."""
    delta = difference(before, after)
    if delta:
        tx.on_commit.append(partial(HELD.add, tx.partition, delta))


def add_entry(tx: Tx, person: str, entry: timeline.Entry) -> None:
    stored_before = tx.get(TIMELINES, person)
    # Counted before the rules change it in place.
    counted_before = figures.of_timeline(stored_before)
    kept = stored_before or timeline.empty()
    before = kept["territory"]
    # A timeline stored before open items were kept gets them from its entries here.
    added, changed = open_items.record(kept, entry, problems.ms(tx.now))
    if not added:
        axis = kept["axes"].get(entry["axis"], [])
        duplicate = any(e["id"] == entry["id"] for e in axis)
        tx.count(LEFT_OUT.labels("duplicate" if duplicate else "too_old"))
    if not changed:
        return
    tx.put(TIMELINES, person, kept)
    counted(tx, counted_before, figures.of_timeline(kept))
    keep_problems(tx, person, before, kept)
    if added:
        tx.count(ENTRIES.labels(entry["axis"]))


async def add_to_timeline(event: Event, tx: Tx) -> None:
    """An event keyed by its person: on the person's timeline at once."""
    if isinstance(event.message, MessageScheduled) and not event.message.programme:
        # A campaign's message: shown by its receipts, not once more when planned.
        tx.count(LEFT_OUT.labels("campaign_message"))
        return
    person, entry = entry_of(event)
    add_entry(tx, person, stored(entry))


async def rekey_by_person(event: Event, tx: Tx) -> None:
    """An access event (keyed by territory): passed on keyed by its patient."""
    person, entry = entry_of(event)
    if not person:
        raise ValueError(
            f"{event.topic} event names no patient_pseudonym: it belongs to no timeline"
        )
    tx.publish(
        TIMELINE_ENTRY_RECORDED,
        TimelineEntryRecorded(person_pseudonym=person, entry=entry),
        key=person,
        subject_pseudonym=person,
        occurred_at=entry.occurred_at.ToDatetime(tzinfo=UTC),
        cause=event.envelope,
    )
    tx.count(REKEYED)


async def add_recorded_entry(event: Event, tx: Tx) -> None:
    """An entry re-keyed by person (from access, or a partner's innovation)."""
    message: TimelineEntryRecorded = event.message
    check_entry(message.entry)
    add_entry(tx, message.person_pseudonym, stored(message.entry))


def problems_end_at(key: str, lookup: Lookup, now: datetime) -> datetime | None:
    """When the first kept problem that lasts a window (a missed visit's week) ends."""
    ends = [p["until"] for p in lookup(WITH_PROBLEMS) or [] if p.get("until") is not None]
    return datetime.fromtimestamp(min(ends) / 1000, UTC) if ends else None


async def forget_passed_problems(key: str, tx: Tx) -> None:
    """Drop the problems whose window has passed; a person left with none is forgotten."""
    kept = [problems.from_dict(p) for p in tx.get(WITH_PROBLEMS, key) or []]
    still = problems.still_open(kept, tx.now)
    if still:
        store_problems(tx, key, still)
    else:
        forget_problems(tx, key)


def count_partition(partition: int, scan: Scan) -> None:
    """A partition opened here: its gauges' figures counted from its stored values."""
    HELD.opened(partition, figures.of_partition(scan, TIMELINES, WITH_PROBLEMS))


PROCESSOR = Processor(
    service="coordination",
    inputs={
        **dict.fromkeys(PERSON_INPUTS, add_to_timeline),
        **dict.fromkeys(TERRITORY_INPUTS, rekey_by_person),
        TIMELINE_ENTRY_RECORDED: add_recorded_entry,
    },
    tables=(
        TableSpec(
            TIMELINES,
            f"Each person's timeline across the axes (the last {timeline.MAX_PER_AXIS} "
            "entries per axis) and their open items (alerts, requests, incidents not closed).",
        ),
        TableSpec(
            WITH_PROBLEMS,
            "Open problems of each person who has any, keyed by territory and person.",
            partition_key=person_of,
        ),
    ),
    timers=(Timer("windows-end", (WITH_PROBLEMS,), problems_end_at, forget_passed_problems),),
    partition_hooks=(PartitionHook("gauges", count_partition, HELD.closed),),
)
