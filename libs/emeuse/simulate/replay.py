"""A `--dry-run` file read back as the run it describes: the setup stages, then the live
events in the order they are due, so a benchmark can put the same seeded load on a
platform it started (benchmarks/bench_simulate.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from emeuse.simulate.events import SimEvent


@dataclass(frozen=True)
class Replay:
    stages: list[list[SimEvent]]  # setup stage 1, stage 2, ... (each sent whole before the next)
    live: list[SimEvent]  # by due time

    @property
    def malformed(self) -> list[SimEvent]:
        """The live records that are not valid events: each must come back as a dead letter."""
        return [e for e in self.live if e.kind.startswith("malformed")]


def read_events(lines: Iterable[str]) -> Replay:
    stages: dict[int, list[SimEvent]] = {}
    live: list[SimEvent] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = SimEvent.from_json(line)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number} is not a simulated event: {exc!r}") from None
        if event.stage:
            stages.setdefault(event.stage, []).append(event)
        else:
            live.append(event)
    live.sort(key=lambda event: event.due)
    return Replay([stages[n] for n in sorted(stages)], live)


def record_id(event: SimEvent) -> str:
    """The `ce_id` the simulator gives the record of `event` (the same for a duplicate)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"emeuse-simulate:{event.event_id}"))
