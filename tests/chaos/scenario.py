"""What a service under faults is given and must give back: one Scenario per service.

A scenario builds a seeded workload (records to apply first, then the stream the faults hit)
and checks the outputs read back against what the workload implies. Adding a service to the
fault suite is adding its Scenario to SCENARIOS (tests/chaos/__init__.py's list).
"""

from __future__ import annotations

import random
from collections.abc import Callable
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
    notes: list[str] = field(default_factory=list)


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
