"""What the evaluation service handles; the kernel runs it (emeuse.kernel).

Every input adds to the figures of its experiment, territory, month and ISO week (the
envelope's ce_experiment, ce_territory and ce_time, UTC): two cells per event. The inputs are
keyed by person (chronic, home, prevention) or by territory (access), so no single table
key can hold a territory's month: its records are spread over every partition. Each
partition keeps its own partial cell instead, under a key that hashes to that partition
(`<seed>|<experiment>|<territory>|<period>`, the period a month YYYY-MM or a week YYYY-Www),
and an answer merges the cells of every partition, asking the other instances for theirs.
"""

from __future__ import annotations

from datetime import UTC
from functools import cache

from emeuse.kernel.declare import Processor, TableSpec
from emeuse.kernel.tx import Tx
from emeuse.registry import (
    PARTITIONS,
)
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.envelope import CODE_OF_TERRITORY
from emeuse.runtime.events import Event
from services.evaluation import point_of_care, reminders, remote_care, unmet
from services.evaluation.contributions import (
    POINT_OF_CARE_INR_TO_ALERT,
    Amount,
    Count,
    Duration,
    Person,
    contributions,
    published_by,
)
from services.evaluation.domain import cells, periods
from services.evaluation.metrics import FOLDED
from services.evaluation.topics import INPUTS

CELLS = "partition_month_cells"
COUNTED = "person_to_counted_cells"


@cache
def seed(partition: int, partitions: int = PARTITIONS) -> str:
    """The shortest "s<n>" the default partitioner puts on `partition`."""
    n = 0
    while expected_partition(f"s{n}".encode(), partitions) != partition:
        n += 1
    return f"s{n}"


def cell_key(partition: int, experiment: str, territory: str, period: str) -> str:
    return f"{seed(partition)}|{experiment}|{territory}|{period}"


def parse_cell_key(key: str) -> tuple[str, str, str]:
    """(experiment, territory, period) of a cell key."""
    _, experiment, territory, period = key.split("|")
    return experiment, territory, period


def seed_of(key: str) -> str:
    return key.split("|", 1)[0]


def periods_of(event: Event) -> tuple[str, str]:
    """The event's month and ISO week."""
    moment = event.envelope.occurred_at.ToDatetime()
    return periods.month_of(moment), periods.week_of(moment)


def first_count(tx: Tx, person: str, counted: str) -> bool:
    """Whether the person is counted here for the first time (then remembered)."""
    seen: list[str] = tx.get(COUNTED, person) or []
    if counted in seen:
        return False
    tx.put(COUNTED, person, [*seen, counted])
    return True


def late_flag(tx: Tx, followed: unmet.Followed) -> None:
    """A flag read before its request (read now): what was asked goes to the flag's
    cells, or the flag moves with it to the request's experiment when it is another."""
    for flag_experiment, territory, period in followed.flag_cells:
        key = cell_key(tx.partition, flag_experiment, territory, period)
        cell = tx.get(CELLS, key) or cells.empty()
        if not followed.moved or flag_experiment == followed.experiment:
            cells.add_breakdowns(cell, unmet.FLAGGED_UNMET, followed.late)
            tx.put(CELLS, key, cell)
            continue
        cells.remove_count(cell, unmet.FLAGGED_UNMET, (followed.moved,))
        if cells.is_empty(cell):
            tx.delete(CELLS, key)
        else:
            tx.put(CELLS, key, cell)
        key = cell_key(tx.partition, followed.experiment, territory, period)
        cell = tx.get(CELLS, key) or cells.empty()
        cells.add_count(cell, unmet.FLAGGED_UNMET, (followed.moved, *followed.late))
        tx.put(CELLS, key, cell)


async def fold(event: Event, tx: Tx) -> None:
    territory = CODE_OF_TERRITORY[event.envelope.territory]
    own = [(event.envelope.experiment_id, territory, period) for period in periods_of(event)]
    followed = unmet.follow(event.message, tx, own)
    # A flag counts in its request's experiment (unmet.py), any other event in its own.
    experiment = followed.experiment or event.envelope.experiment_id
    at_ms = event.envelope.occurred_at.ToMilliseconds()
    inr = point_of_care.follow(event.message, tx, own, at_ms)
    care = remote_care.follow(event.message, tx, own)
    envelope = event.envelope
    recorded = envelope.recorded_at if envelope.HasField("recorded_at") else envelope.occurred_at
    acted = reminders.follow(event.message, tx, own, recorded.ToDatetime(tzinfo=UTC))
    parts = [
        *contributions(event.message, followed.asked, inr.point_of_care_inr, care.care),
        *(Count(name, (f"reminder={series}",)) for name, series in acted.own),
        *published_by(event.envelope.source),
    ]
    for period in periods_of(event):
        key = cell_key(tx.partition, experiment, territory, period)
        cell = tx.get(CELLS, key) or cells.empty()
        for part in parts:
            if isinstance(part, Count):
                cells.add_count(cell, part.name, part.breakdowns)
            elif isinstance(part, Duration):
                cells.add_duration(cell, part.name, part.seconds)
            elif isinstance(part, Amount):
                cells.add_count(cell, part.name, amount=part.amount)
            elif isinstance(part, Person) and event.key:
                counted = f"{part.name}|{experiment}|{territory}|{period}"
                if first_count(tx, event.key, counted):
                    cells.add_count(cell, part.name)
        tx.put(CELLS, key, cell)
    late_flag(tx, followed)
    for booking_cells, breakdown in care.late:
        # A first booking read before this request: what was asked tells its care.
        for booking_experiment, booking_territory, period in booking_cells:
            key = cell_key(tx.partition, booking_experiment, booking_territory, period)
            cell = tx.get(CELLS, key) or cells.empty()
            cells.add_breakdowns(cell, remote_care.BOOKINGS, (breakdown,))
            tx.put(CELLS, key, cell)
    for alert_cells, seconds in inr.late:
        # An alert read before this point-of-care reading: its delay goes to its cells.
        for alert_experiment, alert_territory, period in alert_cells:
            key = cell_key(tx.partition, alert_experiment, alert_territory, period)
            cell = tx.get(CELLS, key) or cells.empty()
            cells.add_duration(cell, POINT_OF_CARE_INR_TO_ALERT, seconds)
            tx.put(CELLS, key, cell)
    for action_cells, series in acted.late:
        # An action read before this reminder of its series: it counts in its own cells.
        for action_experiment, action_territory, period in action_cells:
            key = cell_key(tx.partition, action_experiment, action_territory, period)
            cell = tx.get(CELLS, key) or cells.empty()
            cells.add_count(cell, reminders.ACTED_ON, (f"reminder={series}",))
            tx.put(CELLS, key, cell)
    tx.count(FOLDED.labels(event.topic))


PROCESSOR = Processor(
    service="evaluation",
    inputs=dict.fromkeys(INPUTS, fold),
    tables=(
        TableSpec(
            CELLS,
            "Each partition's counts and duration histograms per experiment, territory, month "
            "and ISO week.",
            partition_key=seed_of,
        ),
        TableSpec(COUNTED, "Cells a person was already counted in (distinct-person indicators)."),
        TableSpec(
            point_of_care.POINT_OF_CARE,
            "Each patient's point-of-care readings no alert has named yet (the last 20).",
        ),
        TableSpec(
            point_of_care.ALERTS_FIRST,
            "Each patient's INR alerts read before a reading they name (the last 20): their "
            "cells and delay, for a point-of-care reading read later.",
        ),
        TableSpec(
            remote_care.PROFESSIONS,
            "The profession each request asked for, or its first bookings read before it "
            "(teleconsultation or télésoin).",
            partition_key=unmet.agenda_partition,
        ),
        TableSpec(
            reminders.REMINDERS,
            "Each person's first reminder sent of each series, actions not counted yet (the "
            "last 20, with their cells) and actions counted (the last 20 ids).",
        ),
        TableSpec(
            unmet.WAITING,
            "What each request not yet booked or flagged asked for (unmet need).",
            partition_key=unmet.agenda_partition,
        ),
    ),
)
