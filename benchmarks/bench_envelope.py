"""Cost of the per-event work every service does: envelope headers and protobuf codec.

Run with `make bench`. Prints events per second for each step; no broker needed.
Anchor (TECH-NOTES): protobuf parses ~2M small events/s on one core, so the envelope,
not the codec, should dominate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import READING_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import check_event, decode
from emeuse.runtime.pseudonym import random_pseudonym

ROUNDS = 50_000


def rate(name: str, step: Callable[[], object], rounds: int = ROUNDS) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        step()
    per_second = rounds / (time.perf_counter() - started)
    print(f"{name:32} {per_second:>12,.0f} events/s")
    return per_second


def main() -> None:
    patient = random_pseudonym()
    reading = ReadingRecorded(
        reading_id="r-1", patient_pseudonym=patient, loinc_code="2339-0", value=112, unit="mg/dL"
    )
    reading.measured_at.GetCurrentTime()
    value = reading.SerializeToString()

    def envelope() -> env.EventEnvelope:
        return env.new_envelope(
            event_type=READING_RECORDED.type_name,
            source="emeuse/bench",
            subject_pseudonym=patient,
            territory=Territory.TERRITORY_MEUSE,
            experiment_id="bench",
            schema_version="v1",
            occurred_at=datetime.now(UTC),
        )

    headers = env.to_headers(envelope())
    rate("envelope -> headers", lambda: env.to_headers(envelope()))
    rate("headers -> envelope (validated)", lambda: env.from_headers(headers))
    rate("value -> ReadingRecorded", lambda: decode(READING_RECORDED, value))
    total = rate(
        "full inbound check",
        lambda: check_event(
            READING_RECORDED, env.from_headers(headers), decode(READING_RECORDED, value), patient
        ),
    )
    # Target: the inbound check costs under 100 µs of CPU per event.
    assert total > 10_000, f"inbound check too slow: {total:,.0f} events/s"


if __name__ == "__main__":
    main()
