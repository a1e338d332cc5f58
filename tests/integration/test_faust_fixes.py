"""Records already fetched survive a second resume of faust's flow control (faust_fixes)."""

from __future__ import annotations

import uuid

from kafka.admin import NewTopic

from tests.integration.test_watchdog import create_topics, run_until

RECORDS = 20


def test_records_waiting_in_an_agent_s_queue_survive_a_second_resume(bootstrap):
    topic = f"emeuse-test-resume-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, NewTopic(topic, 1, 1))
    env = {
        "EMEUSE_KAFKA_BOOTSTRAP": bootstrap,
        "RESUME_TOPIC": topic,
        "RESUME_RECORDS": str(RECORDS),
    }
    lines = run_until("second_resume_app", env, f"seen {RECORDS - 1}")
    seen = [line.split("seen ", 1)[1].strip() for line in lines if "seen " in line]
    assert seen == [str(n) for n in range(RECORDS)], "".join(lines)[-3000:]
