"""A record that cannot be processed is set aside with its reason; the stream goes on."""

from __future__ import annotations

import re
import time

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, MeasureThreshold, ReadingRecorded
from emeuse.registry import ALERT_RAISED, CARE_PLAN_UPDATED, READING_RECORDED
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import complete_plan, headers_for, new_id, record
from tests.integration.harness import metric, wait_for_care_plan


def a_plan(patient: str) -> CarePlanUpdated:
    return complete_plan(
        CarePlanUpdated(
            patient_pseudonym=patient,
            care_plan_id="cp-glucose",
            thresholds=[
                MeasureThreshold(
                    loinc_code="2339-0",
                    unit="mg/dL",
                    low=70,
                    high=250,
                    critical_low=54,
                    critical_high=400,
                ),
            ],
        ),
        "DIABETES",
    )


def a_glucose(patient: str, value: float) -> ReadingRecorded:
    reading = ReadingRecorded(
        reading_id=new_id("glu"),
        patient_pseudonym=patient,
        loinc_code="2339-0",
        value=value,
        unit="mg/dL",
    )
    reading.measured_at.GetCurrentTime()
    return reading


def test_garbage_is_dead_lettered_with_its_place_and_valid_events_keep_flowing(platform, bus):
    chronic = platform.services["chronic"]
    before = chronic.metrics()
    patient = random_pseudonym()
    bus.send(*record(CARE_PLAN_UPDATED, a_plan(patient), patient))
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    # Garbage with valid headers, then a record without headers, on the patient's partition.
    garbage_at = bus.send(
        READING_RECORDED.name,
        patient.encode(),
        b"\xff\xfe not protobuf",
        headers_for(READING_RECORDED, patient),
    )
    headerless_at = bus.send(
        READING_RECORDED.name, patient.encode(), a_glucose(patient, 100).SerializeToString(), []
    )
    bus.send(*record(READING_RECORDED, a_glucose(patient, 50), patient))

    # The valid reading after them is still handled.
    [alert] = bus.wait_for(ALERT_RAISED.name, lambda r: r["key"] == patient)
    assert alert["event"]["rule"] == "threshold.critical_low"

    letters = bus.wait_for("emeuse.chronic.dead-letter.v1", lambda r: r["key"] == patient, count=2)
    by_offset = {
        (int(d["event"]["source_partition"]), int(d["event"]["source_offset"])): d["event"]
        for d in letters
    }
    garbage = by_offset[garbage_at]
    assert garbage["cause"] == "DEAD_LETTER_CAUSE_UNDECODABLE"
    assert re.search(r"value is not a emeuse\.chronic\.v1\.ReadingRecorded", garbage["reason"])
    assert garbage["source_topic"] == READING_RECORDED.name
    assert garbage["consumer"] == "chronic"
    headerless = by_offset[headerless_at]
    assert headerless["cause"] == "DEAD_LETTER_CAUSE_INVALID_ENVELOPE"
    assert "missing header(s) ce_specversion" in headerless["reason"]

    after = chronic.metrics()
    labels = {"service": "chronic", "topic": READING_RECORDED.name}
    assert (
        metric(after, "emeuse_events_dead_lettered_total", **labels)
        - metric(before, "emeuse_events_dead_lettered_total", **labels)
        >= 2
    )
    assert (
        metric(after, "emeuse_events_failed_total", cause="DEAD_LETTER_CAUSE_UNDECODABLE", **labels)
        >= 1
    )
    assert (
        metric(after, "emeuse_events_consumed_total", **labels)
        - metric(before, "emeuse_events_consumed_total", **labels)
        >= 3
    )
    assert (
        metric(after, "emeuse_events_produced_total", service="chronic", topic=ALERT_RAISED.name)
        >= 1
    )
    assert metric(after, "emeuse_handler_seconds_count", **labels) >= 1
    # The lag gauge is set by a timer (runtime/worker.py): wait for its first round.
    deadline = time.monotonic() + 30
    while "emeuse_consumer_lag{" not in after and time.monotonic() < deadline:
        time.sleep(0.5)
        after = chronic.metrics()
    assert "emeuse_consumer_lag{" in after


def test_an_event_breaking_its_rules_is_dead_lettered_with_the_rule(platform, bus):
    patient = random_pseudonym()
    crossed = complete_plan(
        CarePlanUpdated(
            patient_pseudonym=patient,
            care_plan_id="cp-crossed",
            thresholds=[
                MeasureThreshold(
                    loinc_code="2339-0",
                    unit="mg/dL",
                    low=250,
                    high=70,
                    critical_low=54,
                    critical_high=400,
                ),
            ],
        ),
        "DIABETES",
    )
    at = bus.send(*record(CARE_PLAN_UPDATED, crossed, patient))
    [letter] = bus.wait_for(
        "emeuse.chronic.dead-letter.v1",
        lambda r: (
            (int(r["event"]["source_partition"]), int(r["event"]["source_offset"])) == at
            and r["event"]["source_topic"] == CARE_PLAN_UPDATED.name
        ),
    )
    assert letter["event"]["cause"] == "DEAD_LETTER_CAUSE_INVALID_EVENT"
    assert "must satisfy critical_low <= low <= target_low" in letter["event"]["reason"]


def test_logs_name_no_one_and_print_no_payload(platform, bus):
    patient = random_pseudonym()
    bus.send(*record(CARE_PLAN_UPDATED, a_plan(patient), patient))
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    bus.send(*record(READING_RECORDED, a_glucose(patient, 45), patient))
    bus.wait_for(ALERT_RAISED.name, lambda r: r["key"] == patient)
    text = platform.services["chronic"].log_path.read_text()
    assert patient not in text
    assert "mg/dL" not in text
    handled = [
        line
        for line in platform.services["chronic"].log_lines()
        if line.get("event") == "alert.raised"
    ]
    assert handled and all("event_id" in line and "correlation_id" in line for line in handled)


def test_records_a_sender_got_wrong_are_set_aside_each_with_its_reason(platform, bus):
    patient = random_pseudonym()
    reading = a_glucose(patient, 50)
    value, headers = reading.SerializeToString(), headers_for(READING_RECORDED, patient)
    right = expected_partition(patient.encode(), READING_RECORDED.partitions)
    year_one = [(k, b"0001-01-01T00:00:00+01:00" if k == "ce_time" else v) for k, v in headers]
    sent = {
        "key not UTF-8": bus.send(READING_RECORDED.name, b"\xff\xfe\xfd", value, headers),
        "time out of range": bus.send(READING_RECORDED.name, patient.encode(), value, year_one),
        "wrong partition": bus.send(
            READING_RECORDED.name,
            patient.encode(),
            value,
            headers,
            partition=(right + 1) % READING_RECORDED.partitions,
        ),
    }
    wanted = set(sent.values())
    letters = bus.wait_for(
        "emeuse.chronic.dead-letter.v1",
        lambda r: (
            (int(r["event"]["source_partition"]), int(r["event"]["source_offset"])) in wanted
            and r["event"]["source_topic"] == READING_RECORDED.name
        ),
        count=len(sent),
    )
    reasons = {
        (int(d["event"]["source_partition"]), int(d["event"]["source_offset"])): d["event"][
            "reason"
        ]
        for d in letters
    }
    assert "record key is not the event's patient_pseudonym" in reasons[sent["key not UTF-8"]]
    assert "ce_time is out of range" in reasons[sent["time out of range"]]
    assert "murmur2" in reasons[sent["wrong partition"]]
    # The service is still there and still working.
    bus.send(*record(CARE_PLAN_UPDATED, a_plan(patient), patient))
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    bus.send(*record(READING_RECORDED, a_glucose(patient, 45), patient))
    bus.wait_for(ALERT_RAISED.name, lambda r: r["key"] == patient)
