"""What operations rely on: Prometheus scrapes every service, health, reflection, restarts."""

from __future__ import annotations

import signal
import time
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from emeuse.chronic.v1 import chronic_service_pb2, chronic_service_pb2_grpc
from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, MeasureThreshold, ReadingRecorded
from emeuse.deploy.prometheus import RULES_DIR, render
from emeuse.registry import ALERT_RAISED, CARE_PLAN_UPDATED, READING_RECORDED, SERVICES
from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.security import NO_TLS
from tests.integration.events import complete_plan, new_id, record
from tests.integration.harness import (
    Bus,
    Platform,
    metric,
    prometheus_query,
    prometheus_up,
    running_prometheus,
    wait_for_care_plan,
)


@pytest.fixture
def prometheus(platform, tmp_path):
    # The configuration `make up` renders, under the loopback opt-out the harness chooses
    # (plain HTTP); test_encryption.py scrapes over HTTPS.
    targets = {name: f"127.0.0.1:{p.metrics_port}" for name, p in platform.services.items()}
    config = tmp_path / "prometheus.yml"
    config.write_text(render(NO_TLS, RULES_DIR, targets, interval="1s"))
    with running_prometheus(config, tmp_path) as base:
        yield base


def test_the_real_prometheus_scrapes_every_service_as_up(prometheus):
    assert prometheus_up(prometheus, set(SERVICES)) == dict.fromkeys(SERVICES, "1")
    consumed = prometheus_query(prometheus, "sum by (job) (emeuse_consumer_lag)")
    assert {r["metric"]["job"] for r in consumed} == set(SERVICES)


def test_each_service_serves_health_and_reflection(platform):
    expected = {
        "chronic": "emeuse.chronic.v1.ChronicService",
        "access": "emeuse.access.v1.AccessService",
        "home": "emeuse.home.v1.HomeService",
        "prevention": "emeuse.prevention.v1.PreventionService",
        "gateway": "emeuse.partners.v1.PartnerGatewayService",
        "evaluation": "emeuse.evaluation.v1.EvaluationService",
        "coordination": "emeuse.coordination.v1.CoordinationService",
    }
    for name, process in platform.services.items():
        with grpc.insecure_channel(process.grpc_target) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            [answer] = list(
                stub.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                    timeout=5,
                )
            )
        listed = {s.name for s in answer.list_services_response.service}
        assert {expected[name], "grpc.health.v1.Health"} <= listed


def a_reading(patient: str, value: float) -> ReadingRecorded:
    reading = ReadingRecorded(
        reading_id=new_id("spo2"),
        patient_pseudonym=patient,
        loinc_code="59408-5",
        value=value,
        unit="%",
    )
    reading.measured_at.GetCurrentTime()
    return reading


def alerted_copd_patient(
    platform: Platform, bus: Bus, care_plan_id: str, spo2: float
) -> tuple[str, dict[str, Any]]:
    """A new patient under a COPD plan (SpO2 critical below 85 %), a reading of `spo2` sent
    for them, and the AlertRaised chronic published for it."""
    patient = random_pseudonym()
    plan = complete_plan(
        CarePlanUpdated(
            patient_pseudonym=patient,
            care_plan_id=care_plan_id,
            thresholds=[
                MeasureThreshold(
                    loinc_code="59408-5",
                    unit="%",
                    low=88,
                    high=100,
                    critical_low=85,
                    critical_high=100,
                ),
            ],
        ),
        "RESPIRATORY",
    )
    bus.send(*record(CARE_PLAN_UPDATED, plan, patient))
    wait_for_care_plan(platform.services["chronic"].grpc_target, patient, platform.auth)
    bus.send(*record(READING_RECORDED, a_reading(patient, spo2), patient))
    [alert] = bus.wait_for(ALERT_RAISED.name, lambda r: r["key"] == patient)
    return patient, alert


def summary_from(
    target: str, patient: str, auth: tuple[tuple[str, str], ...]
) -> chronic_service_pb2.GetPatientSummaryResponse:
    with grpc.insecure_channel(target) as channel:
        stub = chronic_service_pb2_grpc.ChronicServiceStub(channel)
        return stub.GetPatientSummary(
            chronic_service_pb2.GetPatientSummaryRequest(patient_pseudonym=patient),
            timeout=5,
            metadata=auth,
        )


def all_alerts(target: str, auth: tuple[tuple[str, str], ...]) -> list[chronic_service_pb2.Alert]:
    alerts, token = [], ""
    with grpc.insecure_channel(target) as channel:
        stub = chronic_service_pb2_grpc.ChronicServiceStub(channel)
        while True:
            page = stub.ListAlerts(
                chronic_service_pb2.ListAlertsRequest(page_size=5, page_token=token),
                timeout=10,
                metadata=auth,
            )
            alerts.extend(page.alerts)
            token = page.next_page_token
            if not token:
                return alerts


def test_state_survives_a_killed_worker_and_sigterm_stops_it_cleanly(platform, bus):
    patient, _ = alerted_copd_patient(platform, bus, "cp-copd", 86)

    chronic = platform.services["chronic"]
    chronic.stop(signal.SIGKILL)
    chronic.start()
    chronic.wait_serving()
    # The tables came back from their changelogs: plan and latest value are there.
    after = summary_from(chronic.grpc_target, patient, platform.auth)
    assert after.has_care_plan
    assert [v.value for v in after.latest_values] == [86]
    assert after.alerts_raised == 1

    # A new reading after the restart is still checked against the recovered plan.
    bus.send(*record(READING_RECORDED, a_reading(patient, 80), patient))
    alerts = bus.wait_for(ALERT_RAISED.name, lambda r: r["key"] == patient, count=2)
    assert {a["event"]["rule"] for a in alerts} == {"threshold.low", "threshold.critical_low"}

    # SIGTERM: a graceful stop, exit status 0, well before the harness would kill it.
    started = time.monotonic()
    assert chronic.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 20
    chronic.start()
    chronic.wait_serving()


def test_two_instances_share_the_partitions_and_each_answers_for_every_patient(platform, bus):
    second = platform.new_process("chronic", name="chronic-2")
    second.start()
    try:
        second.wait_serving()
        patients = [random_pseudonym() for _ in range(16)]
        for patient in patients:
            plan = complete_plan(
                CarePlanUpdated(
                    patient_pseudonym=patient,
                    care_plan_id="cp",
                    thresholds=[
                        MeasureThreshold(
                            loinc_code="59408-5",
                            unit="%",
                            low=90,
                            high=100,
                            critical_low=85,
                            critical_high=100,
                        ),
                    ],
                ),
                "RESPIRATORY",
            )
            bus.send(*record(CARE_PLAN_UPDATED, plan, patient))
        # Asked of the second instance: it answers for the patients it holds and forwards
        # the others to the first (the assignment names each partition's owner).
        for patient in patients:
            wait_for_care_plan(second.grpc_target, patient, platform.auth)
        for patient in patients:
            bus.send(*record(READING_RECORDED, a_reading(patient, 84), patient))
        bus.wait_for(
            ALERT_RAISED.name, lambda r: r["key"] in patients, count=len(patients), timeout=90
        )
        # Whichever instance holds a patient's partition, either one answers (forwarding).
        for target in (platform.services["chronic"].grpc_target, second.grpc_target):
            for patient in patients:
                answer = summary_from(target, patient, platform.auth)
                assert answer.has_care_plan, (target, patient)
                assert [v.value for v in answer.latest_values] == [84]
        # Each instance raised the alerts of the patients whose partitions it holds.
        for instance in (platform.services["chronic"], second):
            raised = metric(
                instance.metrics(), "emeuse_events_produced_total", topic=ALERT_RAISED.name
            )
            assert raised > 0, f"{instance.log_path.name} handled none of the 16 patients"

        # ListAlerts asks every instance: each lists all 16 alerts, once, page after page.
        alert_of = {
            r["key"]: r["event"]["alert_id"]
            for r in bus.all_records(ALERT_RAISED.name, 1)
            if r["key"] in patients
        }
        for target in (platform.services["chronic"].grpc_target, second.grpc_target):
            listed = [
                a for a in all_alerts(target, platform.auth) if a.patient_pseudonym in patients
            ]
            assert sorted(a.alert_id for a in listed) == sorted(alert_of.values()), target
        # An acknowledgement sent to either instance is applied by the patient's owner.
        for index, patient in enumerate(patients):
            target = (platform.services["chronic"].grpc_target, second.grpc_target)[index % 2]
            with grpc.insecure_channel(target) as channel:
                acknowledged = chronic_service_pb2_grpc.ChronicServiceStub(
                    channel
                ).AcknowledgeAlert(
                    chronic_service_pb2.AcknowledgeAlertRequest(
                        patient_pseudonym=patient, alert_id=alert_of[patient], member_id="gp-0042"
                    ),
                    timeout=20,
                    metadata=platform.auth,
                )
            assert acknowledged.alert.status == chronic_service_pb2.ALERT_STATUS_ACKNOWLEDGED
    finally:
        assert second.stop() is not None


@pytest.mark.parametrize("token", [None, "not-a-token-anyone-was-given-000000000000"])
def test_a_call_without_a_known_token_is_refused(platform, token):
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    for name, method in (("chronic", "GetPatientSummary"), ("access", "ListPatientRequests")):
        with grpc.insecure_channel(platform.services[name].grpc_target) as channel:
            call = channel.unary_unary(
                f"/emeuse.{name}.v1.{name.capitalize()}Service/{method}",
                request_serializer=lambda _: b"",
                response_deserializer=lambda raw: raw,
            )
            with pytest.raises(grpc.RpcError) as refused:
                call(None, timeout=5, metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "bearer token" in refused.value.details()


def test_lag_at_rest_is_zero_on_an_input_written_in_transactions(platform, bus):
    """Chronic writes its alerts in transactions: each ends with a commit marker that takes
    an offset and is no record. Once evaluation has handled the alert, its lag on that
    partition is 0, not the marker's 1 (what an autoscaler or a lag alert reads)."""
    _, alert = alerted_copd_patient(platform, bus, "cp-copd-lag", 80)
    labels = {"service": "evaluation", "topic": ALERT_RAISED.name}
    labels["partition"] = str(alert["partition"])
    deadline = time.monotonic() + 60
    lag = None
    while time.monotonic() < deadline:
        lag = lag_shown(platform.services["evaluation"].metrics(), labels)
        if lag == 0:
            break
        time.sleep(1)
    assert lag == 0


def lag_shown(text: str, labels: dict[str, str]) -> float | None:
    """The lag sample with these labels, None while the gauge does not show it."""
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.startswith("emeuse_consumer_lag{") and all(
            f'{k}="{v}"' in sample for k, v in labels.items()
        ):
            return float(value)
    return None
