"""A `--dry-run` file read back as the run it describes: the setup stages, then the live
events in the order they are due, so a benchmark can put the same seeded load on a
platform it started (benchmarks/bench_simulate.py)."""

from __future__ import annotations

import hashlib
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


_NAMESPACE = uuid.NAMESPACE_URL.bytes + b"emeuse-simulate:"


def record_id(event: SimEvent) -> str:
    """The `ce_id` the simulator gives the record of `event` (the same for a duplicate):
    `uuid.uuid5(NAMESPACE_URL, "emeuse-simulate:" + event_id)`, spelled out because the
    UUID object it builds costs half of it, once per record (tests/unit/simulate)."""
    name = _NAMESPACE + event.event_id.encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
