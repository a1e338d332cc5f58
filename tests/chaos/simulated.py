"""chronic under faults with the simulator's load (`--load simulate`), checked against a
reference round.

The round's seed draws a territory with `emeuse simulate --dry-run` (a file in the round's
folder, read back by simulate/replay.py): its patients' enrolments become the care plans
of the round's setup, and the first K records of its reading topic the stream (readings in
range, warnings, critical values, records sent twice, late ones, malformed ones). Its mix
lets most of chronic's rules act at once, so its outputs cannot be written down per
record: a fault-free round of one instance over the same records gives them (oracle.py),
and the faulted round must give the same. Nothing in it is timed on the wall clock within
a round: a day to acknowledge, readings expected at their cadence (a day, a week), a
point-of-care result's review within two hours. Partners, care teams, home reports and
every other axis are left out.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated
from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_RESOLVED,
    ALERT_UPDATED,
    CARE_PLAN_UPDATED,
    READING_RECORDED,
    TopicSpec,
    dead_letter_topic,
)
from emeuse.runtime import envelope as env
from emeuse.simulate.encode import build
from emeuse.simulate.events import Options, SimEvent
from emeuse.simulate.replay import Replay, read_events, record_id
from emeuse.simulate.run import run
from emeuse.simulate.send import SOURCE, FileTransport
from services.chronic.topics import READS
from tests.chaos.kafka_io import Output
from tests.chaos.oracle import (
    DEAD_LETTERS,
    Reference,
    compare,
    original_id,
    ours,
    reference_of,
    reference_rows,
)
from tests.chaos.scenario import Record, Row, Scenario, Workload

SCALE = 0.01
# A fixed start: the file is the seed's alone (the reading ids hold the start).
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
RATE = 100.0  # live events a second in the file; the round paces its stream itself
EXPERIMENT = "chaos-simulate"
ACKNOWLEDGE_WITHIN_S = 86_400  # no escalation within a round
ENROL = "chronic/EnrollPatient"
DEAD_LETTERS_TOPIC = dead_letter_topic("chronic").name


@dataclass
class Expect:
    """What the check needs: the stream's record ids, the simulator's malformed ones, and
    the reference (None during the reference round itself)."""

    record_ids: set[str]
    malformed: set[str]
    reference: Reference | None = None


def load_options(seed: int, scale: float, live: int) -> Options:
    return Options(
        seed=seed,
        scale=scale,
        rate=RATE,
        duration=live / RATE,
        start=START,
        experiment=EXPERIMENT,
        acknowledge_within_s=ACKNOWLEDGE_WITHIN_S,
        partner_share=0.0,  # every reading on chronic's own topic, none through the gateway
    )


def write_load(path: Path, options: Options) -> Replay:
    """`emeuse simulate --dry-run path` with these options, read back."""
    with path.open("w") as out:
        run(options, FileTransport(out), Console(file=io.StringIO()), sleep=lambda _: None)
    with path.open() as lines:
        return read_events(lines)


def build_load(seed: int, readings: int, scale: float, path: Path) -> Workload:
    """The seed's enrolments and its first `readings` records of the reading topic."""
    live = readings * 4
    while True:
        replay = write_load(path, load_options(seed, scale, live))
        stream = [e for e in replay.live if e.target == READING_RECORDED.name]
        if len(stream) >= readings:
            break
        live *= 2  # the same seed draws the same first events: a longer file extends it
    stream = stream[:readings]
    plans = [e for stage in replay.stages for e in stage if e.target == ENROL]
    malformed = {record_id(e) for e in stream if e.kind.startswith("malformed")}
    kinds = Counter(e.kind for e in stream)
    return Workload(
        keys=[e.subject for e in plans],
        setup=[_plan(e) for e in plans],
        stream=[_reading(e) for e in stream],
        expected=Expect({record_id(e) for e in stream}, malformed),
        set_aside={record_id(e) for e in stream},
        notes=[
            f"simulated load: seed {seed}, scale {scale:g}, {len(plans)} patients enrolled, "
            f"{len(stream)} records of {READING_RECORDED.name}: "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())),
            f"dry-run file: {path}",
        ],
    )


def _headers(spec: TopicSpec, event: SimEvent) -> list[tuple[str, bytes]]:
    """The envelope the simulator's transport gives the record (send.py), its id the same."""
    envelope = env.new_envelope(
        event_type=spec.type_name,
        source=SOURCE,
        subject_pseudonym=event.subject,
        territory=env.territory_from_code(event.territory),
        experiment_id=event.experiment or EXPERIMENT,
        schema_version=spec.schema_version,
        occurred_at=event.at,
        recorded_at=event.at,
        event_id=record_id(event),
    )
    return env.to_headers(envelope)


def _plan(event: SimEvent) -> Record:
    """An enrolment as the CarePlanUpdated chronic's EnrollPatient publishes."""
    plan = build(CarePlanUpdated, event.message["care_plan"])
    experiment = event.message.get("experiment_id", "")
    headers = _headers(CARE_PLAN_UPDATED, replace(event, experiment=experiment))
    return CARE_PLAN_UPDATED.name, event.subject.encode(), plan.SerializeToString(), headers


def _reading(event: SimEvent) -> Record:
    if event.raw is not None:
        value = event.raw
    else:
        value = build(READING_RECORDED.message, event.message).SerializeToString()
    return READING_RECORDED.name, event.subject.encode(), value, _headers(READING_RECORDED, event)


def check(workload: Workload, outputs: dict[str, list[Output]]) -> list[Row]:
    expect: Expect = workload.expected
    mine = ours(outputs, set(workload.keys), expect.record_ids, DEAD_LETTERS_TOPIC)
    if expect.reference is not None:
        return compare(expect.reference, mine)
    # The reference round: what it gave, judged only for what is known in advance.
    return [*reference_rows(reference_of(mine)), _malformed_row(expect, mine[DEAD_LETTERS])]


def _malformed_row(expect: Expect, letters: list[Output]) -> Row:
    """The simulator's malformed records each come back as a dead letter, and no other."""
    lettered = Counter(original_id(o) for o in letters)
    row = Row("malformed records dead-lettered", len(expect.malformed))
    row.seen = len(lettered.keys() & expect.malformed)
    row.lost = len(expect.malformed - lettered.keys())
    row.dup_by_meaning = sum(n - 1 for i, n in lettered.items() if i in expect.malformed)
    row.unexpected = sum(n for i, n in lettered.items() if i not in expect.malformed)
    return row


def _given(*_: object) -> Workload:
    raise TypeError("the simulated load is built by build_load and given to run_round")


CHRONIC_SIMULATED = Scenario(
    service="chronic",
    inputs=READS,
    stream_topic=READING_RECORDED,
    outputs=(ALERT_RAISED, ALERT_UPDATED, ALERT_ESCALATED, ALERT_ACKNOWLEDGED, ALERT_RESOLVED),
    build=_given,
    check=check,
)
# The services with a simulated load; the others keep their hand-built workloads only.
SIMULATED = {CHRONIC_SIMULATED.service: (CHRONIC_SIMULATED, build_load)}
