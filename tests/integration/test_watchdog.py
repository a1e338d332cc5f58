"""A partition faust stops fetching from is noticed and read again, and a table recovery
that stops reading is started again (runtime/watchdog.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from tests.integration.harness import ROOT


def run_until(app: str, env: dict[str, str], until: str) -> list[str]:
    """Run the test app `app` as a worker until it prints `until` (or 90 s): its output."""
    datadir = tempfile.mkdtemp(prefix=f"{app}-")
    process = subprocess.Popen(
        [sys.executable, "-m", f"tests.integration.{app}", "worker", "-l", "warn"],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1", "TEST_APP_DATADIR": datadir},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 90
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if until in line or time.monotonic() > deadline:
                break
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(datadir, ignore_errors=True)
    return lines


def create_topics(bootstrap: str, *topics: NewTopic) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(list(topics))
    finally:
        admin.close()


def run_until_seen(bootstrap: str, ignore_resume: bool) -> list[str]:
    topic = f"emeuse-test-stall-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, NewTopic(topic, 2, 1))
    env = {
        "EMEUSE_KAFKA_BOOTSTRAP": bootstrap,
        "STALL_TOPIC": topic,
        "STALL_IGNORE_RESUME": "1" if ignore_resume else "0",
    }
    return run_until("stalled_partition_app", env, "seen waiting")


@pytest.mark.parametrize(
    ("ignore_resume", "remedies"), [(False, ["resume"]), (True, ["resume", "rejoin"])]
)
def test_a_record_behind_a_paused_partition_is_read(bootstrap, ignore_resume, remedies):
    lines = run_until_seen(bootstrap, ignore_resume)
    text = "".join(lines)
    assert "paused partition 0 and published" in text, text[-3000:]
    assert "seen waiting partition=0" in text, text[-3000:]
    stalls = [line for line in lines if "consumer.partition_stalled" in line]
    assert [a for a in remedies if any(f"action={a}" in s for s in stalls)] == remedies, stalls
    assert len(stalls) == len(remedies), stalls


def test_a_table_recovery_that_stops_reading_is_started_again(bootstrap):
    app_id = f"emeuse-test-recovery-{uuid.uuid4().hex[:8]}"
    changelog = f"{app_id}-counts-changelog"
    compacted = {"cleanup.policy": "compact"}
    create_topics(
        bootstrap,
        NewTopic(f"{app_id}-input", 1, 1),
        NewTopic(changelog, 1, 1, topic_configs=compacted),
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for key in ("a", "b", "c", "d", "e"):  # as faust writes them: JSON keys and values
        producer.send(changelog, key=f'"{key}"'.encode(), value=b"1")
    producer.flush()
    producer.close()

    lines = run_until(
        "stalled_recovery_app",
        {"EMEUSE_KAFKA_BOOTSTRAP": bootstrap, "STALL_APP_ID": app_id},
        "recovered",
    )
    text = "".join(lines)
    assert "recovery sent to the changelog's end" in text, text[-3000:]
    stalls = [line for line in lines if "table.recovery_stalled" in line]
    assert len(stalls) == 1, text[-3000:]
    assert f"{changelog}:0" in stalls[0] and "action=rejoin" in stalls[0], stalls
    # Read back whole by the recovery the rebalance started.
    assert "recovered 5 keys" in text, text[-3000:]
