"""The bus and gRPC carry real work: CLI in, services react, CLI and gRPC out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import grpc

from emeuse.access.v1 import access_service_pb2, access_service_pb2_grpc
from emeuse.chronic.v1 import chronic_events_pb2, chronic_service_pb2, chronic_service_pb2_grpc
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import CARE_TEAM, new_id
from tests.integration.harness import emeuse, wait_for_care_plan

INR_PLAN = {
    "care_plan_id": "cp-inr",
    "programme": "MONITORING_PROGRAMME_ANTICOAGULATION",
    "care_team": CARE_TEAM,
    "acknowledge_within": "1800s",
    "thresholds": [
        {
            "loinc_code": "34714-6",
            "unit": "{INR}",
            "low": 2,
            "high": 3,
            "critical_low": 1.5,
            "critical_high": 5,
            "expected_every": "86400s",
        }
    ],
}


def publish(bootstrap, event_type, payload, territory="55"):
    done = emeuse(
        "publish",
        event_type,
        "--json",
        json.dumps(payload),
        "--territory",
        territory,
        "--experiment",
        "exp-inr-ehpad",
        bootstrap=bootstrap,
    )
    assert done.returncode == 0, done.stderr
    event_id = done.stdout.strip()
    assert len(event_id) == 36
    return event_id


def inr_reading(patient, value, reading_id=None):
    # Measured now: one device measuring twice at the same time would be one measurement.
    measured_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "reading_id": reading_id or new_id("inr"),
        "patient_pseudonym": patient,
        "loinc_code": "34714-6",
        "value": value,
        "unit": "{INR}",
        "measured_at": measured_at,
        "device_id": "coaguchek-ehpad-3",
    }


def tail_until(bootstrap, topic, predicate, attempts=30):
    """`emeuse tail --from-beginning` until a line matches (the service may still be working)."""
    for _ in range(attempts):
        done = emeuse(
            "tail", topic, "--from-beginning", "--timeout", "1", "--json", bootstrap=bootstrap
        )
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        matching = [line for line in lines if predicate(line)]
        if matching:
            return matching
    raise AssertionError(f"nothing matching on {topic}")


def test_a_published_critical_inr_raises_an_alert_that_tail_shows(platform, bootstrap):
    patient = random_pseudonym()
    plan_id = publish(
        bootstrap, "emeuse.chronic.v1.CarePlanUpdated", {"patient_pseudonym": patient, **INR_PLAN}
    )
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    assert plan_id
    # The plan must be in the table before the reading is checked: both are keyed by the
    # patient, so they share a partition and are read in order.
    reading_id = publish(
        bootstrap, "emeuse.chronic.v1.ReadingRecorded", inr_reading(patient, 5.6), territory="54"
    )

    [alert] = tail_until(
        bootstrap, "emeuse.chronic.alert-raised.v1", lambda line: line["key"] == patient
    )
    assert alert["type"] == "emeuse.chronic.v1.AlertRaised"
    assert alert["event"]["severity"] == "ALERT_SEVERITY_CRITICAL"
    assert alert["event"]["rule"] == "threshold.critical_high"
    headers = alert["headers"]
    assert headers["ce_source"] == "emeuse/chronic"
    assert headers["ce_subject"] == patient
    assert headers["ce_territory"] == "54"
    assert headers["ce_experiment"] == "exp-inr-ehpad"
    assert headers["ce_causationid"] == reading_id
    assert headers["ce_correlationid"] == reading_id


def test_a_critical_alert_opens_a_teleconsultation_with_the_chronic_summary(
    platform, bootstrap, bus
):
    patient = random_pseudonym()
    publish(
        bootstrap, "emeuse.chronic.v1.CarePlanUpdated", {"patient_pseudonym": patient, **INR_PLAN}
    )
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    reading_id = publish(bootstrap, "emeuse.chronic.v1.ReadingRecorded", inr_reading(patient, 6.1))

    [request] = bus.wait_for(
        "emeuse.access.consultation-requested.v1",
        lambda r: r["event"]["patient_pseudonym"] == patient,
    )
    event = request["event"]
    assert request["key"] == "55"  # the access agenda is keyed by territory
    assert request["headers"]["ce_subject"] == patient
    assert event["urgency"] == "URGENCY_IMMEDIATE"
    assert event["reason_code"] == "chronic.alert.critical"
    # The summary came from the chronic service over gRPC.
    assert event["care_summary_available"] is True
    assert event["care_summary"] == [{"loinc_code": "34714-6", "value": 6.1, "unit": "{INR}"}]
    assert request["headers"]["ce_correlationid"] == reading_id
    assert request["headers"]["ce_source"] == "emeuse/access"

    with grpc.insecure_channel(platform.services["access"].grpc_target) as channel:
        stub = access_service_pb2_grpc.AccessServiceStub(channel)
        listed = stub.ListPatientRequests(
            access_service_pb2.ListPatientRequestsRequest(patient_pseudonym=patient),
            timeout=5,
            metadata=platform.auth,
        )
    assert [r.request.request_id for r in listed.consultation_requests] == [event["request_id"]]
    assert listed.consultation_requests[0].request.cause_id == event["cause_id"]


def test_grpc_returns_the_state_events_built(platform, bootstrap, bus):
    patient = random_pseudonym()
    publish(
        bootstrap, "emeuse.chronic.v1.CarePlanUpdated", {"patient_pseudonym": patient, **INR_PLAN}
    )
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    publish(bootstrap, "emeuse.chronic.v1.ReadingRecorded", inr_reading(patient, 3.4))
    bus.wait_for("emeuse.chronic.alert-raised.v1", lambda r: r["key"] == patient)

    with grpc.insecure_channel(platform.services["chronic"].grpc_target) as channel:
        stub = chronic_service_pb2_grpc.ChronicServiceStub(channel)
        summary = stub.GetPatientSummary(
            chronic_service_pb2.GetPatientSummaryRequest(patient_pseudonym=patient),
            timeout=5,
            metadata=platform.auth,
        )
    assert summary.has_care_plan
    assert [(v.loinc_code, v.value, v.unit) for v in summary.latest_values] == [
        ("34714-6", 3.4, "{INR}")
    ]
    assert summary.alerts_raised == 1


def test_a_warning_alert_opens_no_teleconsultation(platform, bootstrap, bus):
    patient = random_pseudonym()
    publish(
        bootstrap, "emeuse.chronic.v1.CarePlanUpdated", {"patient_pseudonym": patient, **INR_PLAN}
    )
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    publish(bootstrap, "emeuse.chronic.v1.ReadingRecorded", inr_reading(patient, 3.4))
    publish(bootstrap, "emeuse.chronic.v1.ReadingRecorded", inr_reading(patient, 7.0))
    # One patient, one partition: access handles the warning before the critical alert.
    alerts = bus.wait_for("emeuse.chronic.alert-raised.v1", lambda r: r["key"] == patient, count=2)
    severities = {a["event"]["severity"]: a["event"]["alert_id"] for a in alerts}
    assert set(severities) == {"ALERT_SEVERITY_WARNING", "ALERT_SEVERITY_CRITICAL"}
    mine = lambda r: r["event"]["patient_pseudonym"] == patient  # noqa: E731
    bus.wait_for("emeuse.access.consultation-requested.v1", mine)
    requests = [
        r
        for r in bus.all_records("emeuse.access.consultation-requested.v1", idle_seconds=1)
        if mine(r)
    ]
    assert [r["event"]["cause_id"] for r in requests] == [severities["ALERT_SEVERITY_CRITICAL"]]


def test_a_call_without_a_pseudonym_is_an_invalid_argument(platform):
    with grpc.insecure_channel(platform.services["chronic"].grpc_target) as channel:
        stub = chronic_service_pb2_grpc.ChronicServiceStub(channel)
        try:
            stub.GetPatientSummary(
                chronic_service_pb2.GetPatientSummaryRequest(patient_pseudonym="184127512345678"),
                timeout=5,
                metadata=platform.auth,
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "pseudonym" in error.details()
        else:
            raise AssertionError("an INS was accepted as a pseudonym")


def test_a_device_without_kafka_records_a_reading_over_grpc(platform, bootstrap, bus):
    patient = random_pseudonym()
    publish(
        bootstrap,
        "emeuse.chronic.v1.CarePlanUpdated",
        {
            "patient_pseudonym": patient,
            "care_plan_id": "cp-glucose",
            "programme": "MONITORING_PROGRAMME_DIABETES",
            "care_team": CARE_TEAM,
            "acknowledge_within": "1800s",
            "thresholds": [
                {
                    "loinc_code": "2339-0",
                    "unit": "mg/dL",
                    "low": 70,
                    "high": 250,
                    "critical_low": 54,
                    "critical_high": 400,
                    "expected_every": "86400s",
                }
            ],
        },
    )
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    reading = chronic_events_pb2.ReadingRecorded(
        reading_id=new_id("glu"),
        patient_pseudonym=patient,
        loinc_code="2339-0",
        value=2.7,
        unit="mmol/L",
        device_id="glucometer-12",
    )
    reading.measured_at.GetCurrentTime()
    with grpc.insecure_channel(platform.services["chronic"].grpc_target) as channel:
        stub = chronic_service_pb2_grpc.ChronicServiceStub(channel)
        recorded = stub.RecordReading(
            chronic_service_pb2.RecordReadingRequest(
                reading=reading, territory="52", experiment_id="exp-gluco"
            ),
            timeout=10,
            metadata=platform.auth,
        )
        assert recorded.normalised_unit == "mg/dL"
        assert round(recorded.normalised_value) == 49

        impossible = chronic_events_pb2.ReadingRecorded()
        impossible.CopyFrom(reading)
        impossible.reading_id, impossible.value = new_id("glu"), 400.0
        try:
            stub.RecordReading(
                chronic_service_pb2.RecordReadingRequest(
                    reading=impossible, territory="52", experiment_id="exp-gluco"
                ),
                timeout=10,
                metadata=platform.auth,
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "impossible" in error.details()
        else:
            raise AssertionError("400 mmol/L of glucose was accepted")

    [alert] = bus.wait_for("emeuse.chronic.alert-raised.v1", lambda r: r["key"] == patient)
    assert alert["event"]["rule"] == "threshold.critical_low"
    assert alert["headers"]["ce_causationid"] == recorded.event_id
    assert alert["headers"]["ce_territory"] == "52"
    assert alert["headers"]["ce_experiment"] == "exp-gluco"


def test_a_lab_sends_a_fhir_bundle_and_each_observation_is_checked(platform, bootstrap, bus):
    patient = random_pseudonym()

    def inr_observation(identifier, value, at):
        return {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "identifier": [{"system": "urn:lab:bar-le-duc", "value": identifier}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "6301-6"}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": at,
                "valueQuantity": {
                    "value": value,
                    "system": "http://unitsofmeasure.org",
                    "code": "{INR}",
                },
            }
        }

    lab_plan = {
        "patient_pseudonym": patient,
        "care_plan_id": "cp-lab",
        "programme": "MONITORING_PROGRAMME_ANTICOAGULATION",
        "care_team": CARE_TEAM,
        "acknowledge_within": "1800s",
        "thresholds": [
            {
                "loinc_code": "6301-6",
                "unit": "{INR}",
                "low": 2,
                "high": 3,
                "critical_low": 1.5,
                "critical_high": 5,
                "expected_every": "86400s",
            }
        ],
    }
    publish(bootstrap, "emeuse.chronic.v1.CarePlanUpdated", lab_plan)
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            inr_observation(new_id("lab"), 2.6, "2026-11-28T09:00:00+01:00"),
            inr_observation(new_id("lab"), 5.8, "2026-11-28T10:00:00+01:00"),
        ],
    }
    with grpc.insecure_channel(platform.services["chronic"].grpc_target) as channel:
        stub = chronic_service_pb2_grpc.ChronicServiceStub(channel)
        ingested = stub.IngestFhirObservation(
            chronic_service_pb2.IngestFhirObservationRequest(
                fhir_json=json.dumps(bundle), territory="55", experiment_id="exp-inr-ehpad"
            ),
            timeout=10,
            metadata=platform.auth,
        )
        assert len(ingested.event_ids) == 2
        try:
            stub.IngestFhirObservation(
                chronic_service_pb2.IngestFhirObservationRequest(
                    fhir_json=json.dumps({"resourceType": "Patient"}),
                    territory="55",
                    experiment_id="exp-1",
                ),
                timeout=10,
                metadata=platform.auth,
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "not Observation or Bundle" in error.details()
        else:
            raise AssertionError("a Patient resource was ingested")

    alerts = bus.wait_for("emeuse.chronic.alert-raised.v1", lambda r: r["key"] == patient)
    assert [a["event"]["loinc_code"] for a in alerts] == ["6301-6"]
    assert alerts[0]["headers"]["ce_causationid"] == ingested.event_ids[1]


def test_the_care_plan_in_force_is_read_back_with_its_version(platform, bootstrap):
    patient = random_pseudonym()
    target = platform.services["chronic"].grpc_target
    with grpc.insecure_channel(target) as channel:
        stub = chronic_service_pb2_grpc.ChronicServiceStub(channel)
        request = chronic_service_pb2.GetCarePlanRequest(patient_pseudonym=patient)
        try:
            stub.GetCarePlan(request, timeout=5, metadata=platform.auth)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("a plan was found for a patient never enrolled")
        publish(
            bootstrap,
            "emeuse.chronic.v1.CarePlanUpdated",
            {"patient_pseudonym": patient, **INR_PLAN},
        )
        changed = {**INR_PLAN, "care_plan_id": "cp-inr-valve"}
        changed["thresholds"] = [{**INR_PLAN["thresholds"][0], "low": 2.5, "high": 3.5}]
        publish(
            bootstrap,
            "emeuse.chronic.v1.CarePlanUpdated",
            {"patient_pseudonym": patient, **changed},
        )
        for _ in range(100):
            try:
                plan = stub.GetCarePlan(request, timeout=5, metadata=platform.auth).care_plan
            except grpc.RpcError:
                plan = None
            if plan is not None and plan.version == 2:
                break
            time.sleep(0.2)
    assert plan is not None and plan.version == 2
    assert plan.care_plan_id == "cp-inr-valve"
    assert (plan.thresholds[0].low, plan.thresholds[0].high) == (2.5, 3.5)
    assert [m.escalation_rank for m in plan.care_team] == [1, 2]
