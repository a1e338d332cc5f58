"""A million patients on one chronic instance: memory, restart to processing, timer lateness.

Run with `make bench` (BENCH_STATES=N for another count). The patients' care plans are
written straight to chronic's changelog (what a million enrolments would leave there), a
few in a hundred with a monitoring-gap deadline in the minute after the restart. Chronic
builds its stores from the changelog once (shown, no target), is stopped with SIGTERM and
started again: the figures are the time until it serves again, its memory, and how late
the due timers fire.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer
from google.protobuf import json_format

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated
from emeuse.kernel.store import changelog_key
from emeuse.registry import PARTITIONS
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.topics import TopicPlan, ensure_topics
from services.chronic.care_plan import record_care_plan
from services.chronic.processing import CARE_PLANS
from tests.integration.events import plan_json
from tests.integration.harness import Platform, emeuse, metric

ROOT = Path(__file__).resolve().parents[1]
STATES = int(os.environ.get("BENCH_STATES", "1000000"))
DUE_SHARE = 0.01
# When the due share comes: after the first build (about 3,000 plans/s here) and a restart.
DUE_AFTER_S = float(os.environ.get("BENCH_DUE_AFTER_S", str(STATES / 3000 + 90)))
EVERY = timedelta(days=1)
TARGETS = {"restart_to_serving_s": 10.0, "rss_mb": 1500.0, "p99_timer_lateness_s": 1.0}
INR = {"loinc_code": "34714-6", "unit": "{INR}", "low": 2, "high": 3, "critical_high": 5}


def plan_template(now: datetime) -> str:
    """One stored plan as JSON, with the patient and its monitoring start to fill in."""
    message = json_format.ParseDict(
        plan_json("__PATIENT__", "cp-bench", "ANTICOAGULATION", INR), CarePlanUpdated()
    )
    message.thresholds[0].expected_every.FromTimedelta(EVERY)
    stored = record_care_plan(message, previous=None, territory="55", recorded_at=now)
    stored["in_force"]["bands"]["34714-6"]["monitored_since"] = "__SINCE__"
    stored["applied"] = []
    return json.dumps(stored, separators=(",", ":"), sort_keys=True)


async def write_changelog(bootstrap: str, topic: str, now: datetime) -> int:
    """Every patient's plan on its partition of the changelog; returns how many are due in
    the minute after the restart (a gap deadline one interval after `monitored_since`)."""
    template = plan_template(now)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1_000_000, acks=1
    )
    await producer.start()
    due = 0
    # Seeded: the same share due, the same spread of deadlines, from run to run (not secret).
    rng = random.Random(55)  # noqa: S311
    try:
        pending = []
        for i in range(STATES):
            patient = random_pseudonym()
            soon = rng.random() < DUE_SHARE
            due += soon
            # Due a minute after the build and restart are expected done, or in days.
            offset = (
                timedelta(seconds=DUE_AFTER_S + rng.uniform(0, 60))
                if soon
                else timedelta(days=rng.uniform(0.5, 5))
            )
            since = (now + offset - EVERY).isoformat().replace("+00:00", "Z")
            value = template.replace("__PATIENT__", patient).replace("__SINCE__", since)
            pending.append(
                await producer.send(
                    topic,
                    value=value.encode(),
                    key=changelog_key(CARE_PLANS, patient),
                    partition=expected_partition(patient.encode(), PARTITIONS),
                )
            )
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
                print(f"  {i + 1:,} plans written", flush=True)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return due


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def histogram_quantile(text: str, name: str, q: float) -> float:
    """The upper bound of the bucket holding quantile `q` of a Prometheus histogram."""
    buckets = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append(
                (float("inf") if bound == "+Inf" else float(bound), float(line.split()[-1]))
            )
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= q * total:
            return bound
    return float("nan")


def main() -> int:
    bootstrap = os.environ.get("EMEUSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    assert emeuse("topics", "create", bootstrap=bootstrap).returncode == 0
    app_id = f"bench-states-{uuid.uuid4().hex[:8]}"
    changelog = f"{app_id}-state-changelog"
    ensure_topics(bootstrap, [TopicPlan(changelog, PARTITIONS, {"cleanup.policy": "compact"})], 1)
    out = ROOT / ".local" / "bench"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    platform = Platform(bootstrap, out / f"states-{stamp}")
    figures: dict[str, float] = {}
    started = time.monotonic()
    due = asyncio.run(write_changelog(bootstrap, changelog, datetime.now(UTC)))
    figures["plans_written_per_s"] = STATES / (time.monotonic() - started)
    chronic = platform.new_process("chronic", app_id=app_id)
    platform.services["chronic"] = chronic
    try:
        started = time.monotonic()
        chronic.start()
        chronic.wait_serving(timeout=3600)
        figures["first_build_s"] = time.monotonic() - started
        chronic.stop()
        started = time.monotonic()
        chronic.start()
        chronic.wait_serving(timeout=600)
        figures["restart_to_serving_s"] = time.monotonic() - started
        assert chronic.process is not None
        figures["rss_mb"] = rss_mb(chronic.process.pid)
        # The due timers come DUE_AFTER_S to a minute more after the plans were written.
        deadline = time.monotonic() + DUE_AFTER_S + 300
        fired = 0.0
        while time.monotonic() < deadline and fired < due:
            time.sleep(5)
            fired = metric(chronic.metrics(), "emeuse_kernel_timers_fired_total")
        text = chronic.metrics()
        figures["timers_due"] = float(due)
        figures["timers_fired"] = fired
        figures["p99_timer_lateness_s"] = histogram_quantile(
            text, "emeuse_kernel_timer_lateness_seconds", 0.99
        )
        figures["rss_mb_after_timers"] = rss_mb(chronic.process.pid)
    finally:
        platform.stop_all()
    missed = []
    print(f"{STATES:,} patient states on one instance")
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("met" if value <= target else "MISSED")
        if verdict == "MISSED":
            missed.append(name)
        shown = f"<= {target:,.1f}" if target is not None else ""
        print(f"{name:28} {value:>14,.2f} {shown:>12} {verdict}")
    (out / f"states-{stamp}.json").write_text(json.dumps({"states": STATES, **figures}, indent=2))
    if fired < due:
        print(f"bench: {due - fired:,.0f} due timers not fired", file=sys.stderr)
        return 1
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
