"""What a service under faults is given and must give back: one Scenario per service.

A scenario builds a seeded workload (records to apply first, then the stream the faults hit)
and checks the outputs read back against what the workload implies. Adding a service to the
fault suite is adding its Scenario to SCENARIOS (tests/chaos/__init__.py's list).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from emeuse.registry import TopicSpec
from tests.chaos.kafka_io import Output

# topic, key, value, headers
Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


@dataclass
class Row:
    """One line of the table: outputs of one kind, expected against what was read."""

    what: str
    expected: int
    seen: int = 0
    lost: int = 0
    dup_by_id: int = 0
    dup_by_meaning: int = 0
    unexpected: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.dup_by_id or self.dup_by_meaning or self.unexpected)


@dataclass
class Workload:
    keys: list[str]  # record keys of this round: outputs of other keys are not ours
    setup: list[Record]  # applied before the stream starts (enrolments)
    stream: list[Record]  # produced while the faults happen
    expected: Any  # what the scenario's check needs
    outputs_expected: int = 0  # how many outputs a complete run gives (to stop waiting)
    # Applied once `setup` is (records that need it in force: a practitioner's slots). Two
    # topics have no order between them, so what depends on another record waits for it.
    then: list[Record] = field(default_factory=list)
    # Produced once the stream is all handled, faults over: what a person does after seeing
    # an output (a contact acknowledging the incident she was shown).
    answers: list[Record] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # ce_ids of the workload's records meant for the dead letters (malformed on purpose):
    # the scenario's check judges them, the poison row leaves them out.
    set_aside: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Scenario:
    service: str
    inputs: tuple[TopicSpec, ...]  # every input of the service's consumer group
    stream_topic: TopicSpec  # where the stream and the poison records go
    outputs: tuple[TopicSpec, ...]  # read back by the checker (the dead letters besides)
    build: Callable[[random.Random, int, int], Workload]  # rng, subjects, stream records
    check: Callable[[Workload, dict[str, list[Output]]], list[Row]]
    # Timers may still write this long after the last input was handled.
    timers_s: float = 0.0


def tally(
    what: str,
    expected: dict[Hashable, str],
    outputs: list[Output],
    meaning: Callable[[Output], Hashable],
    right: Callable[[Output], bool] = lambda _: True,
) -> Row:
    """A row for outputs of one kind: `expected` maps what each output means (an episode
    and a step, a request) to the event id it must have. A meaning seen twice is a
    duplicate whatever the ids; one not expected, or expected but with another id or
    content (`right`), is unexpected."""
    row = Row(what, len(expected))
    by_meaning = Counter(meaning(o) for o in outputs)
    row.seen = len(by_meaning.keys() & expected.keys())
    row.lost = len(expected.keys() - by_meaning.keys())
    row.dup_by_id = sum(n - 1 for n in Counter(o.event_id for o in outputs).values())
    row.dup_by_meaning = sum(n - 1 for k, n in by_meaning.items() if k in expected)
    row.unexpected = sum(
        1
        for o in outputs
        if meaning(o) not in expected or o.event_id != expected[meaning(o)] or not right(o)
    )
    return row
