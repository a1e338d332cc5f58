"""What counting coordination's gauges from the stored state costs, with 100,000 persons.

Run: `PYTHONPATH=libs:. .venv/bin/python benchmarks/bench_coordination_gauges.py`
(BENCH_PERSONS=N for another count). Builds one partition store of N persons' timelines
(ENTRIES_EACH entries each, a person in ten at risk), as the service stores them, then times
what the partition hook does when the partition is opened (read and decode every value,
count it, in a worker thread as the kernel does), which is also what a count at every
scrape would cost, and the event loop's longest pause meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from emeuse.kernel.declare import JsonCodec, Scan
from emeuse.kernel.framing import Framed
from emeuse.kernel.store import PartitionStore
from emeuse.kernel.sums import Figures
from services.coordination import figures
from services.coordination.domain import open_items, problems
from services.coordination.processing import TIMELINES, WITH_PROBLEMS, problems_key

PERSONS = int(os.environ.get("BENCH_PERSONS", "100000"))
KINDS = {
    "chronic": ("alert_raised", "alert_resolved"),
    "access": ("consultation_requested", "slot_booked"),
    "home": ("incident_raised", "visit_planned"),
    "prevention": ("programme_started", "message_receipt"),
}


def person_values(
    rng: random.Random, person: str, entries: int, now_ms: int
) -> list[tuple[str, str, bytes]]:
    kept: dict = {"territory": "", "axes": {}}
    for i in range(entries):
        axis = rng.choice(list(KINDS))
        entry = {
            "id": f"{person}-{i}",
            "axis": axis,
            "kind": rng.choice(KINDS[axis]),
            "at": now_ms - rng.randrange(30 * 86_400_000),
            "subject": f"s-{i % 3}",
            "related": "",
            "code": "fall" if axis == "home" else "CRITICAL",
            "detail": "",
            "territory": "55",
        }
        open_items.record(kept, entry, now_ms)
    codec = Framed(JsonCodec())
    values = [(TIMELINES, person, codec.encode(kept))]
    if rng.random() < 0.1:
        found = [
            problems.Problem("chronic", "critical_alert", "a", now_ms, 5),
            problems.Problem("access", "request_waiting", "r", now_ms, 2),
        ]
        key = problems_key("55", person)
        values.append((WITH_PROBLEMS, key, codec.encode([problems.to_dict(p) for p in found])))
    return values


def measure(entries_each: int) -> None:
    rng = random.Random(14)  # noqa: S311
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        store = PartitionStore(Path(tmp) / "p0")
        for start in range(0, PERSONS, 5000):
            batch = []
            for n in range(start, min(PERSONS, start + 5000)):
                batch.extend(person_values(rng, f"person-{n:07d}", entries_each, now_ms))
            store.apply(batch)
        codec = Framed(JsonCodec())

        def scan(table: str):
            return ((key, codec.decode(raw)) for key, raw in store.items(table))

        started = time.perf_counter()
        counted, pause = asyncio.run(count_beside_the_loop(scan))
        seconds = time.perf_counter() - started
        store.close()
    print(
        f"{PERSONS} persons x {entries_each} entries: counted in {seconds:.2f} s "
        f"({seconds / PERSONS * 1e6:.1f} us a person), longest pause of the event loop "
        f"meanwhile {pause * 1000:.0f} ms; timelines={counted[figures.TIMELINES]} "
        f"entries={counted[figures.ENTRIES]} at_risk={counted.get(figures.at_risk('55'), 0)}"
    )


async def count_beside_the_loop(scan: Scan) -> tuple[Figures, float]:
    """Count in a worker thread, as the kernel runs a partition hook, while a ticker on the
    loop measures its longest wait for a turn (what a gRPC call would wait)."""
    counting = asyncio.ensure_future(
        asyncio.to_thread(figures.of_partition, scan, TIMELINES, WITH_PROBLEMS)
    )
    longest, last = 0.0, time.perf_counter()
    while not counting.done():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest, last = max(longest, now - last - 0.001), now
    return counting.result(), longest


if __name__ == "__main__":
    for each in (5, 20, 200):  # 200: every axis full (50 entries each)
        measure(each)
