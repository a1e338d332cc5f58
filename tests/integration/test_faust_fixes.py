"""Records already fetched survive a second resume of faust's flow control (faust_fixes);
records dropped after they were fetched are read again by the watchdog."""

from __future__ import annotations

import uuid

from kafka.admin import NewTopic

from tests.integration.test_watchdog import create_topics, run_until

RECORDS = 20


def run_second_resume_app(bootstrap: str, **env: str) -> list[str]:
    """second_resume_app on a topic of its own, until its agent saw the last record."""
    topic = f"emeuse-test-resume-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, NewTopic(topic, 1, 1))
    env |= {"EMEUSE_KAFKA_BOOTSTRAP": bootstrap, "RESUME_TOPIC": topic}
    return run_until(
        "second_resume_app", env | {"RESUME_RECORDS": str(RECORDS)}, f"seen {RECORDS - 1}"
    )


def test_records_waiting_in_an_agent_s_queue_survive_a_second_resume(bootstrap):
    lines = run_second_resume_app(bootstrap)
    seen = [line.split("seen ", 1)[1].strip() for line in lines if "seen " in line]
    assert seen == [str(n) for n in range(RECORDS)], "".join(lines)[-3000:]


def test_records_dropped_after_they_were_fetched_are_read_again(bootstrap):
    # faust as it is: the second resume drops the queued records.
    lines = run_second_resume_app(bootstrap, RESUME_FIX="0", RESUME_WATCHDOG="1")
    text = "".join(lines)
    assert "resuming with" in text, text[-3000:]
    skipped = [line for line in lines if "consumer.records_skipped" in line]
    assert skipped and "action=reread" in skipped[0], text[-3000:]
    seen = {line.split("seen ", 1)[1].strip() for line in lines if "seen " in line}
    assert seen == {str(n) for n in range(RECORDS)}, text[-3000:]
