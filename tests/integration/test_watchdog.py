"""A partition faust stops fetching from is noticed and read again (runtime/watchdog.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from tests.integration.harness import ROOT


def run_until_seen(bootstrap: str, ignore_resume: bool) -> list[str]:
    topic = f"emeuse-test-stall-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        admin.close()
    env = {
        **os.environ,
        "EMEUSE_KAFKA_BOOTSTRAP": bootstrap,
        "STALL_TOPIC": topic,
        "STALL_IGNORE_RESUME": "1" if ignore_resume else "0",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.stalled_partition_app", "worker", "-l", "warn"],
        cwd=ROOT,
        env=env,
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
            if "seen waiting" in line or time.monotonic() > deadline:
                break
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
    return lines


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
