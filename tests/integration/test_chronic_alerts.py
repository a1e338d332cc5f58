"""Chronic alerts end to end on the real broker: care plans over gRPC, readings over gRPC
and Kafka, the point-of-care INR pathway, escalation, acknowledgement, gaps, restarts."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, ReadingRecorded, ReviewDecision
from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_RESOLVED,
    ALERT_UPDATED,
    CARE_PLAN_UPDATED,
    READING_RECORDED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import new_id, record
from tests.integration.harness import Platform, metric, wait_for_care_plan

NURSE = {"member_id": "ide-ehpad-0107", "role": "CARE_ROLE_NURSE", "escalation_rank": 1}
GP = {"member_id": "gp-0042", "role": "CARE_ROLE_GP", "escalation_rank": 2}
COORDINATOR = {"member_id": "coord-0009", "role": "CARE_ROLE_COORDINATOR", "escalation_rank": 3}
LAB = {"member_id": "lab-bar-le-duc", "role": "CARE_ROLE_LAB", "escalation_rank": 4}
INR_BAND = {
    "loinc_code": "34714-6",
    "unit": "{INR}",
    "low": 2,
    "high": 3,
    "critical_low": 1.5,
    "critical_high": 5,
    "expected_every": "604800s",
}
GLUCOSE_BAND = {
    "loinc_code": "2339-0",
    "unit": "mg/dL",
    "low": 70,
    "high": 250,
    "critical_low": 54,
    "critical_high": 400,
    "expected_every": "86400s",
}


class Chronic:
    """The chronic gRPC API as a care-team tool calls it, with the operator's token."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def __getattr__(self, method: str) -> Any:
        def call(request: Any, timeout: float = 20) -> Any:
            target = self.platform.services["chronic"].grpc_target
            with grpc.insecure_channel(target) as channel:
                stub = api_grpc.ChronicServiceStub(channel)
                return getattr(stub, method)(request, timeout=timeout, metadata=self.platform.auth)

        return call


def care_plan(patient: str, programme: str, *bands: dict, team=(NURSE, GP, LAB), ack="1800s"):
    return json_format.ParseDict(
        {
            "patient_pseudonym": patient,
            "care_plan_id": new_id("cp"),
            "programme": f"MONITORING_PROGRAMME_{programme}",
            "thresholds": list(bands),
            "care_team": list(team),
            "acknowledge_within": ack,
        },
        CarePlanUpdated(),
    )


def enrol(platform: Platform, plan: CarePlanUpdated, *, wait: bool = True) -> None:
    Chronic(platform).EnrollPatient(
        api.EnrollPatientRequest(care_plan=plan, territory="55", experiment_id="exp-telesurv")
    )
    if wait:
        wait_for_care_plan(
            platform.services["chronic"].grpc_target, plan.patient_pseudonym, platform.auth
        )


def reading(
    patient: str,
    loinc: str,
    value: float,
    unit: str,
    *,
    measured_at: datetime | None = None,
    point_of_care: bool = False,
    reading_id: str | None = None,
) -> ReadingRecorded:
    message = ReadingRecorded(
        reading_id=reading_id or new_id("r"),
        patient_pseudonym=patient,
        loinc_code=loinc,
        value=value,
        unit=unit,
        device_id="device-7",
        point_of_care=point_of_care,
    )
    message.measured_at.FromDatetime(measured_at or datetime.now(UTC))
    return message


def record_reading(platform: Platform, message: ReadingRecorded) -> str:
    response = Chronic(platform).RecordReading(
        api.RecordReadingRequest(reading=message, territory="55", experiment_id="exp-telesurv")
    )
    return str(response.event_id)


def of(patient: str):
    return lambda r: r["key"] == patient


def grpc_error(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    return caught.value


def test_the_point_of_care_inr_pathway_alerts_the_prescriber_once_the_lab_validates(platform, bus):
    patient = random_pseudonym()
    chronic = Chronic(platform)
    enrol(platform, care_plan(patient, "ANTICOAGULATION", INR_BAND))

    # The nurse's first capillary INR, over Kafka, is rejected by the lab: it never alerts.
    measured = datetime.now(UTC) - timedelta(minutes=20)
    clotted = reading(patient, "34714-6", 6.2, "{INR}", measured_at=measured, point_of_care=True)
    bus.send(*record(READING_RECORDED, clotted, patient))
    # The second, over gRPC (the EHPAD's coagulometer has no Kafka client), is validated.
    urgent = reading(
        patient,
        "34714-6",
        5.6,
        "{INR}",
        measured_at=measured + timedelta(minutes=5),
        point_of_care=True,
    )
    record_reading(platform, urgent)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = chronic.GetPatientStatus(api.GetPatientStatusRequest(patient_pseudonym=patient))
        if len(status.pending_review_reading_ids) == 2:
            break
        time.sleep(0.2)
    assert sorted(status.pending_review_reading_ids) == sorted(
        [clotted.reading_id, urgent.reading_id]
    )
    assert not status.latest_values and not status.open_alerts  # not validated: no alert yet

    # Only the care team's lab may review.
    denied = grpc_error(
        chronic.ReviewPointOfCareResult,
        api.ReviewPointOfCareResultRequest(
            patient_pseudonym=patient,
            reading_id=urgent.reading_id,
            reviewer_id=NURSE["member_id"],
            decision="REVIEW_DECISION_VALIDATED",
        ),
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    for result, decision, reason in (
        (clotted, "REVIEW_DECISION_REJECTED", "sample.clotted"),
        (urgent, "REVIEW_DECISION_VALIDATED", ""),
    ):
        chronic.ReviewPointOfCareResult(
            api.ReviewPointOfCareResultRequest(
                patient_pseudonym=patient,
                reading_id=result.reading_id,
                reviewer_id=LAB["member_id"],
                decision=decision,
                rejection_reason=reason,
            )
        )

    [alert] = bus.wait_for(ALERT_RAISED.name, of(patient))
    event = alert["event"]
    assert event["severity"] == "ALERT_SEVERITY_CRITICAL"
    assert event["reading_ids"] == [urgent.reading_id]
    # The prescriber first, though the nurse is first in the escalation order.
    assert event["notified"]["member_id"] == GP["member_id"]
    assert (event["target_low"], event["target_high"], event["unit"]) == (2, 3, "{INR}")
    assert [r["value"] for r in event["recent_results"]] == [5.6]
    assert float(event["measurement_to_alert"].rstrip("s")) >= 15 * 60
    # The rejected result never joined: the validated one is the patient's only alert.
    assert len([r for r in bus.all_records(ALERT_RAISED.name, 1) if r["key"] == patient]) == 1
    status = chronic.GetPatientStatus(api.GetPatientStatusRequest(patient_pseudonym=patient))
    assert [v.value for v in status.latest_values] == [5.6]
    assert not status.pending_review_reading_ids
    metrics = platform.services["chronic"].metrics()
    assert (
        metric(metrics, "emeuse_chronic_point_of_care_to_alert_seconds_count", loinc="34714-6") >= 1
    )


def test_a_capillary_inr_alerts_the_prescriber_when_the_plan_lists_the_lab_inr(platform, bus):
    patient = random_pseudonym()
    chronic = Chronic(platform)
    enrol(platform, care_plan(patient, "ANTICOAGULATION", {**INR_BAND, "loinc_code": "6301-6"}))

    # The EHPAD's coagulometer sends the point-of-care code; the plan lists the lab's.
    measured = datetime.now(UTC) - timedelta(minutes=10)
    capillary = reading(patient, "34714-6", 5.6, "{INR}", measured_at=measured, point_of_care=True)
    bus.send(*record(READING_RECORDED, capillary, patient))
    # A glucose the plan does not monitor: kept and shown, never judged.
    sugar = reading(patient, "2339-0", 0.4, "g/L", measured_at=measured)
    record_reading(platform, sugar)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = chronic.GetPatientStatus(api.GetPatientStatusRequest(patient_pseudonym=patient))
        if status.pending_review_reading_ids and status.not_monitored_loinc_codes:
            break
        time.sleep(0.2)
    assert list(status.pending_review_reading_ids) == [capillary.reading_id]
    assert list(status.not_monitored_loinc_codes) == ["2339-0"]
    assert [(v.loinc_code, round(v.value)) for v in status.latest_values] == [("2339-0", 40)]

    chronic.ReviewPointOfCareResult(
        api.ReviewPointOfCareResultRequest(
            patient_pseudonym=patient,
            reading_id=capillary.reading_id,
            reviewer_id=LAB["member_id"],
            decision="REVIEW_DECISION_VALIDATED",
        )
    )

    [alert] = bus.wait_for(ALERT_RAISED.name, of(patient))
    event = alert["event"]
    assert event["severity"] == "ALERT_SEVERITY_CRITICAL"
    assert event["reading_ids"] == [capillary.reading_id]
    assert event["notified"]["member_id"] == GP["member_id"]
    assert event["loinc_code"] == "6301-6"
    status = chronic.GetPatientStatus(api.GetPatientStatusRequest(patient_pseudonym=patient))
    assert list(status.not_monitored_loinc_codes) == ["2339-0"]
    metrics = platform.services["chronic"].metrics()
    assert metric(metrics, "emeuse_chronic_readings_not_monitored_total", loinc="2339-0") >= 1


def test_a_reading_of_a_patient_with_no_care_plan_is_dead_lettered_with_the_reason(platform, bus):
    stranger = random_pseudonym()
    at = bus.send(*record(READING_RECORDED, reading(stranger, "34714-6", 5.6, "{INR}"), stranger))
    [letter] = bus.wait_for(
        "emeuse.chronic.dead-letter.v1",
        lambda r: (
            (int(r["event"]["source_partition"]), int(r["event"]["source_offset"])) == at
            and r["event"]["source_topic"] == READING_RECORDED.name
        ),
    )
    assert letter["event"]["cause"] == "DEAD_LETTER_CAUSE_INVALID_EVENT"
    assert "not enrolled in remote monitoring" in letter["event"]["reason"]


def test_an_unacknowledged_alert_escalates_after_the_delay_and_stops_when_acknowledged(
    platform, bus
):
    patient = random_pseudonym()
    chronic = Chronic(platform)
    team = (NURSE, GP, COORDINATOR)
    enrol(platform, care_plan(patient, "DIABETES", GLUCOSE_BAND, team=team, ack="5s"))
    record_reading(platform, reading(patient, "2339-0", 45, "mg/dL"))
    [raised] = bus.wait_for(ALERT_RAISED.name, of(patient))
    alert_id = raised["event"]["alert_id"]
    assert raised["event"]["notified"]["member_id"] == NURSE["member_id"]

    # Nobody answers: after 5 s the GP is told.
    [escalated] = bus.wait_for(ALERT_ESCALATED.name, of(patient))
    assert escalated["event"]["notified"]["member_id"] == GP["member_id"]
    assert escalated["event"]["step"] == 1
    acknowledged = chronic.AcknowledgeAlert(
        api.AcknowledgeAlertRequest(
            patient_pseudonym=patient, alert_id=alert_id, member_id=GP["member_id"]
        )
    ).alert
    assert acknowledged.status == api.ALERT_STATUS_ACKNOWLEDGED
    assert acknowledged.acknowledged_by == GP["member_id"]
    assert list(acknowledged.notified_member_ids) == [NURSE["member_id"], GP["member_id"]]
    [ack] = bus.wait_for(ALERT_ACKNOWLEDGED.name, of(patient))
    assert ack["event"]["member_id"] == GP["member_id"]

    # Past the next delay, the coordinator was never told.
    time.sleep(7)
    escalations = [r for r in bus.all_records(ALERT_ESCALATED.name, 1) if r["key"] == patient]
    assert [e["event"]["step"] for e in escalations] == [1]

    resolved = chronic.ResolveAlert(
        api.ResolveAlertRequest(
            patient_pseudonym=patient,
            alert_id=alert_id,
            member_id=GP["member_id"],
            resolution="ALERT_RESOLUTION_HANDLED",
        )
    ).alert
    assert resolved.status == api.ALERT_STATUS_RESOLVED
    [closed] = bus.wait_for(ALERT_RESOLVED.name, of(patient))
    assert closed["event"]["resolution"] == "ALERT_RESOLUTION_HANDLED"
    status = chronic.GetPatientStatus(api.GetPatientStatusRequest(patient_pseudonym=patient))
    assert not status.open_alerts
    metrics = platform.services["chronic"].metrics()
    assert metric(metrics, "emeuse_chronic_alert_escalations_total", step="1") >= 1
    assert metric(metrics, "emeuse_chronic_alert_time_to_acknowledge_seconds_count") >= 1


def test_a_restart_between_the_alert_and_its_escalation_still_escalates_exactly_once(platform, bus):
    patient = random_pseudonym()
    enrol(platform, care_plan(patient, "DIABETES", GLUCOSE_BAND, team=(NURSE, GP), ack="8s"))
    record_reading(platform, reading(patient, "2339-0", 40, "mg/dL"))
    [raised] = bus.wait_for(ALERT_RAISED.name, of(patient))
    time.sleep(2)  # past the changelog flush (broker_commit_interval): the alert is stored

    chronic = platform.services["chronic"]
    chronic.stop(signal.SIGKILL)
    chronic.start()
    chronic.wait_serving()

    [escalated] = bus.wait_for(ALERT_ESCALATED.name, of(patient), timeout=60)
    assert escalated["event"]["alert_id"] == raised["event"]["alert_id"]
    assert escalated["event"]["notified"]["member_id"] == GP["member_id"]
    # The chain is exhausted (two members): nothing more, and no step twice.
    time.sleep(10)
    escalations = [r for r in bus.all_records(ALERT_ESCALATED.name, 1) if r["key"] == patient]
    assert len({e["headers"]["ce_id"] for e in escalations}) == 1
    assert len(escalations) == 1
    raised_again = [r for r in bus.all_records(ALERT_RAISED.name, 1) if r["key"] == patient]
    assert len({r["event"]["alert_id"] for r in raised_again}) == 1


def test_readings_that_stop_coming_raise_a_gap_alert_closed_by_the_next_reading(platform, bus):
    patient = random_pseudonym()
    chronic = Chronic(platform)
    band = {**GLUCOSE_BAND, "expected_every": "3s"}
    enrol(platform, care_plan(patient, "DIABETES", band))

    [gap] = bus.wait_for(ALERT_RAISED.name, of(patient))
    assert gap["event"]["rule"] == "monitoring.gap"
    assert gap["event"]["loinc_code"] == "2339-0"
    assert gap["event"]["severity"] == "ALERT_SEVERITY_WARNING"
    status = chronic.GetPatientStatus(api.GetPatientStatusRequest(patient_pseudonym=patient))
    [adherence] = status.adherence
    assert adherence.overdue and adherence.expected_every.seconds == 3

    record_reading(platform, reading(patient, "2339-0", 120, "mg/dL"))
    closed = bus.wait_for(
        ALERT_RESOLVED.name, lambda r: r["event"]["alert_id"] == gap["event"]["alert_id"]
    )
    assert closed[0]["event"]["resolution"] == "ALERT_RESOLUTION_DATA_RECEIVED"
    gaps = metric(platform.services["chronic"].metrics(), "emeuse_chronic_monitoring_gaps_total")
    assert gaps >= 1

    # Under télésurveillance the gap rule cannot be switched off.
    no_gap = care_plan(random_pseudonym(), "DIABETES", {**GLUCOSE_BAND, "expected_every": "0s"})
    refused = grpc_error(
        chronic.EnrollPatient,
        api.EnrollPatientRequest(care_plan=no_gap, territory="55", experiment_id="exp-telesurv"),
    )
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expected_every" in refused.details()
    # Back to a daily reading, so this patient stops raising gaps for the other tests.
    chronic.UpdateCarePlan(
        api.UpdateCarePlanRequest(
            care_plan=care_plan(patient, "DIABETES", GLUCOSE_BAND),
            territory="55",
            experiment_id="exp-telesurv",
        )
    )


def test_a_care_plan_delivered_again_does_not_bring_back_the_older_plan(platform, bus):
    patient = random_pseudonym()
    chronic = Chronic(platform)
    enrol(platform, care_plan(patient, "DIABETES", GLUCOSE_BAND))

    def update(high: int) -> int:
        plan = care_plan(patient, "DIABETES", {**GLUCOSE_BAND, "high": high})
        request = api.UpdateCarePlanRequest(care_plan=plan, territory="55", experiment_id="x")
        return chronic.UpdateCarePlan(request).version

    assert update(180) == 2
    # The enrolment's plan record comes again, as after a rebalance or a crash: not applied
    # (the 250 mg/dL threshold is not back, no version 3), so the next change is version 3.
    bus.replay(CARE_PLAN_UPDATED.name, patient)
    assert update(170) == 3
    in_force = chronic.GetCarePlan(api.GetCarePlanRequest(patient_pseudonym=patient)).care_plan
    assert (in_force.version, in_force.thresholds[0].high) == (3, 170)


def test_care_plans_change_over_grpc_and_apply_to_the_next_reading(platform, bus):
    patient = random_pseudonym()
    chronic = Chronic(platform)
    plan = care_plan(patient, "DIABETES", GLUCOSE_BAND)
    enrol(platform, plan)
    # The same enrolment asked again (a lost answer) answers as the first time...
    repeat = api.EnrollPatientRequest(care_plan=plan, territory="55", experiment_id="exp-telesurv")
    assert chronic.EnrollPatient(repeat) == chronic.EnrollPatient(repeat)
    assert chronic.EnrollPatient(repeat).version == 1
    # ...another plan for an enrolled patient is a change: UpdateCarePlan.
    other = care_plan(patient, "DIABETES", GLUCOSE_BAND)
    again = grpc_error(
        chronic.EnrollPatient,
        api.EnrollPatientRequest(care_plan=other, territory="55", experiment_id="exp-telesurv"),
    )
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    stranger = care_plan(random_pseudonym(), "DIABETES", GLUCOSE_BAND)
    unknown = grpc_error(
        chronic.UpdateCarePlan,
        api.UpdateCarePlanRequest(care_plan=stranger, territory="55", experiment_id="exp-x"),
    )
    assert unknown.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The diabetologist lowers the high threshold from 250 to 180 mg/dL.
    stricter = care_plan(patient, "DIABETES", {**GLUCOSE_BAND, "high": 180})
    chronic.UpdateCarePlan(
        api.UpdateCarePlanRequest(care_plan=stricter, territory="55", experiment_id="exp-x")
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        version = chronic.GetCarePlan(api.GetCarePlanRequest(patient_pseudonym=patient))
        if version.care_plan.version == 2:
            break
        time.sleep(0.2)
    assert version.care_plan.version == 2
    record_reading(platform, reading(patient, "2339-0", 200, "mg/dL"))
    [alert] = bus.wait_for(ALERT_RAISED.name, of(patient))
    assert alert["event"]["rule"] == "threshold.high"

    # Care-team actions are checked: unknown alert, unknown member.
    missing = grpc_error(
        chronic.AcknowledgeAlert,
        api.AcknowledgeAlertRequest(
            patient_pseudonym=patient, alert_id="no-such-alert", member_id=GP["member_id"]
        ),
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    outsider = grpc_error(
        chronic.AcknowledgeAlert,
        api.AcknowledgeAlertRequest(
            patient_pseudonym=patient, alert_id=alert["event"]["alert_id"], member_id="gp-9999"
        ),
    )
    assert outsider.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_thousand_shuffled_readings_with_duplicates_give_exactly_the_expected_alerts(
    platform, bus
):
    chronic = Chronic(platform)
    rng = random.Random(20261129)
    now = datetime.now(UTC)
    kinds = ["in_range", "warning", "critical", "in_range", "warning"] * 10
    patients = {random_pseudonym(): kind for kind in kinds}
    values = {"in_range": (90, 240), "warning": (255, 390), "critical": (410, 600)}
    readings = []
    for patient in patients:
        enrol(platform, care_plan(patient, "DIABETES", GLUCOSE_BAND), wait=False)
    for patient, kind in patients.items():
        wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
        low, high = values[kind]
        for i in range(20):
            at = now - timedelta(hours=6) + timedelta(minutes=i)
            readings.append(
                reading(patient, "2339-0", rng.uniform(low, high), "mg/dL", measured_at=at)
            )
    assert len(readings) == 1000
    # 100 sent twice under the same id, 50 again under a new id by the same device at the
    # same time: each counts once.
    sends = [*readings, *rng.sample(readings, 100)]
    for original in rng.sample(readings, 50):
        copy = ReadingRecorded()
        copy.CopyFrom(original)
        copy.reading_id = new_id("resent")
        sends.append(copy)
    rng.shuffle(sends)
    for index, message in enumerate(sends):
        if index % 10 == 0:
            record_reading(platform, message)  # a tenth over gRPC
        else:
            bus.send(*record(READING_RECORDED, message, message.patient_pseudonym))

    alerting = {p for p, kind in patients.items() if kind != "in_range"}
    bus.wait_for(
        ALERT_RAISED.name, lambda r: r["key"] in alerting, count=len(alerting), timeout=120
    )
    raised = [r for r in bus.all_records(ALERT_RAISED.name, 3) if r["key"] in patients]
    by_patient = Counter(r["key"] for r in raised)
    # One alert per episode: one per abnormal patient, none for the others, none twice.
    assert by_patient == Counter({p: 1 for p in alerting})
    for alert in raised:
        expected = "CRITICAL" if patients[alert["key"]] == "critical" else "WARNING"
        assert alert["event"]["severity"] == f"ALERT_SEVERITY_{expected}"
    # The other 19 abnormal readings of each episode joined its alert.
    updates = Counter(
        r["key"] for r in bus.all_records(ALERT_UPDATED.name, 3) if r["key"] in patients
    )
    assert updates == Counter({p: 19 for p in alerting})

    # ListAlerts pages through them: the critical ones of these patients, each once.
    critical = {r["event"]["alert_id"] for r in raised if patients[r["key"]] == "critical"}
    listed: list[str] = []
    token = ""
    while True:
        page = chronic.ListAlerts(
            api.ListAlertsRequest(
                territory="55",
                severity="ALERT_SEVERITY_CRITICAL",
                status="ALERT_STATUS_OPEN",
                page_size=4,
                page_token=token,
            )
        )
        assert len(page.alerts) <= 4
        listed += [a.alert_id for a in page.alerts if a.patient_pseudonym in patients]
        token = page.next_page_token
        if not token:
            break
    assert sorted(listed) == sorted(critical)


def test_a_reading_and_a_lab_review_asked_again_answer_as_the_first_time(platform):
    patient = random_pseudonym()
    chronic = Chronic(platform)
    enrol(platform, care_plan(patient, "ANTICOAGULATION", INR_BAND))
    capillary = reading(patient, "34714-6", 2.4, "{INR}", point_of_care=True)
    # A reading sent twice is one event (the handler counts it once either way).
    assert record_reading(platform, capillary) == record_reading(platform, capillary)
    review = api.ReviewPointOfCareResultRequest(
        patient_pseudonym=patient,
        reading_id=capillary.reading_id,
        reviewer_id=LAB["member_id"],
        decision="REVIEW_DECISION_VALIDATED",
    )
    first = chronic.ReviewPointOfCareResult(review)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = chronic.GetPatientStatus(api.GetPatientStatusRequest(patient_pseudonym=patient))
        if not status.pending_review_reading_ids:
            break
        time.sleep(0.2)
    assert not status.pending_review_reading_ids  # applied: the result left the review queue
    assert chronic.ReviewPointOfCareResult(review) == first
    # Another decision on a result already reviewed is refused, not taken as a repeat.
    review.decision = ReviewDecision.REVIEW_DECISION_REJECTED
    review.rejection_reason = "sample.clotted"
    other = grpc_error(chronic.ReviewPointOfCareResult, review)
    assert other.code() == grpc.StatusCode.FAILED_PRECONDITION
