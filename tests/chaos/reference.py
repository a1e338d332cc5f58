"""A round against a reference (`--load simulate`): the same records through a fault-free
round of one instance, then through the faulted round, whose outputs must be the
reference's (oracle.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from tests.chaos.cluster import Broker
from tests.chaos.oracle import ours, reference_of
from tests.chaos.round import RoundConfig, RoundReport, run_round
from tests.chaos.simulated import DEAD_LETTERS_TOPIC, SIMULATED, Expect

# The reference's stream is sent within this: no recovery is measured in it.
REFERENCE_STREAM_S = 10.0


def rounds_against_reference(
    config: RoundConfig,
    service: str,
    bootstrap: str,
    workdir: Path,
    broker: Broker | None,
    scale: float,
) -> Iterator[RoundReport]:
    """The reference round's report, then the faulted round's (not run when the reference
    failed: it would be compared with a wrong oracle)."""
    scenario, build_load = SIMULATED[service]
    workdir.mkdir(parents=True, exist_ok=True)
    workload = build_load(config.seed, config.readings, scale, workdir / "load.jsonl")
    expect: Expect = workload.expected
    alone = replace(
        config, instances=1, faults=False, broker_faults=False, stream_s=REFERENCE_STREAM_S
    )
    reference = run_round(
        alone, scenario, bootstrap, workdir / "reference", None, workload=workload
    )
    reference.notes.insert(0, "reference round: one instance, no faults")
    if not reference.ok:
        reference.notes.append("the reference failed: no faulted round compared with it")
        yield reference
        return
    yield reference
    mine = ours(reference.outputs, set(workload.keys), expect.record_ids, DEAD_LETTERS_TOPIC)
    expect.reference = reference_of(mine)
    workload.outputs_expected = expect.reference.count(spec.name for spec in scenario.outputs)
    faulted = run_round(config, scenario, bootstrap, workdir / "faulted", broker, workload=workload)
    faulted.notes.insert(0, f"faulted round, compared with the reference ({reference.app_id})")
    yield faulted
