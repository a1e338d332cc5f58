"""A lab's corrected result and a late reading, end to end on the real broker: FHIR in over
gRPC (the path labs use), alerts out on Kafka, the care team's view over gRPC."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.registry import ALERT_RAISED, ALERT_RESOLVED
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import new_id
from tests.integration.harness import Platform
from tests.integration.test_chronic_alerts import (
    GLUCOSE_BAND,
    Chronic,
    care_plan,
    enrol,
    of,
    reading,
    record_reading,
)


def observation(patient: str, lab_id: str, value: float, at: datetime, status: str) -> dict:
    """A lab's glucose result as its LIS sends it: the lab's own id, kept by a correction."""
    return {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:oid:1.2.250.1.999.2", "value": lab_id}],
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": at.isoformat(),
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    }


def ingest(platform: Platform, *observations: dict) -> None:
    resource = (
        observations[0]
        if len(observations) == 1
        else {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": o} for o in observations],
        }
    )
    Chronic(platform).IngestFhirObservation(
        api.IngestFhirObservationRequest(
            fhir_json=json.dumps(resource), territory="55", experiment_id="exp-telesurv"
        )
    )


def latest(platform: Platform, patient: str, value: float) -> api.GetPatientStatusResponse:
    """The patient's status once the latest glucose is `value`."""
    deadline = time.monotonic() + 30
    while True:
        status = Chronic(platform).GetPatientStatus(
            api.GetPatientStatusRequest(patient_pseudonym=patient)
        )
        if [v.value for v in status.latest_values] == [value] or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def when(text: str) -> datetime:
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp.ToDatetime(tzinfo=UTC)


def test_a_lab_correcting_120_to_450_alerts_the_care_team_with_both_values(platform, bus):
    patient = random_pseudonym()
    enrol(platform, care_plan(patient, "DIABETES", GLUCOSE_BAND))
    now = datetime.now(UTC).replace(microsecond=0)
    lab_id = new_id("glu")
    ingest(platform, observation(patient, lab_id, 120, now - timedelta(hours=1), "final"))
    assert [v.value for v in latest(platform, patient, 120).latest_values] == [120]

    # The same result sent again as final is a duplicate, whatever its value. A low value
    # measured earlier, behind it on the same topic, shows when it was handled.
    ingest(
        platform,
        observation(patient, lab_id, 450, now - timedelta(hours=1), "final"),
        observation(patient, new_id("glu"), 60, now - timedelta(hours=3), "final"),
    )
    [low] = bus.wait_for(ALERT_RAISED.name, of(patient))
    assert low["event"]["rule"] == "threshold.low"
    assert [v.value for v in latest(platform, patient, 120).latest_values] == [120]

    ingest(platform, observation(patient, lab_id, 450, now - timedelta(hours=1), "corrected"))
    alerts = bus.wait_for(ALERT_RAISED.name, of(patient), count=2)
    assert len(alerts) == 2  # the re-sent 450 raised nothing; the correction did
    critical = alerts[1]["event"]
    assert critical["rule"] == "threshold.critical_high"
    assert critical["correction"]["previous_value"] == 120
    assert critical["correction"]["corrected_value"] == 450
    assert [r["value"] for r in critical["recent_results"]] == [450, 60]
    superseded = bus.wait_for(
        ALERT_RESOLVED.name, lambda r: r["event"]["alert_id"] == low["event"]["alert_id"]
    )
    assert superseded[0]["event"]["resolution"] == "ALERT_RESOLUTION_SUPERSEDED"

    status = latest(platform, patient, 450)
    assert [v.value for v in status.latest_values] == [450]
    [shown] = [a for a in status.open_alerts if a.alert_id == critical["alert_id"]]
    assert (shown.correction.previous_value, shown.correction.corrected_value) == (120, 450)


def test_a_late_reading_that_closes_a_gap_times_the_next_gap_from_its_measurement(platform, bus):
    patient = random_pseudonym()
    chronic = Chronic(platform)
    band = {**GLUCOSE_BAND, "expected_every": "3s"}
    enrol(platform, care_plan(patient, "DIABETES", band))
    [gap] = bus.wait_for(ALERT_RAISED.name, of(patient))
    assert gap["event"]["rule"] == "monitoring.gap"

    # Measured a second ago, delivered now: the next gap is due 3 s after the measurement.
    measured = datetime.now(UTC) - timedelta(seconds=1)
    record_reading(platform, reading(patient, "2339-0", 120, "mg/dL", measured_at=measured))
    bus.wait_for(ALERT_RESOLVED.name, lambda r: r["event"]["alert_id"] == gap["event"]["alert_id"])
    gaps = bus.wait_for(ALERT_RAISED.name, of(patient), count=2)
    assert when(gaps[1]["event"]["measured_at"]) == measured + timedelta(seconds=3)
    # Back to a daily reading, so this patient stops raising gaps for the other tests.
    chronic.UpdateCarePlan(
        api.UpdateCarePlanRequest(
            care_plan=care_plan(patient, "DIABETES", GLUCOSE_BAND),
            territory="55",
            experiment_id="exp-telesurv",
        )
    )
