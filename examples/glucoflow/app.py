"""GlucoFlow's consumer: glucose readings and alerts of the patients who consent.

    emeuse partner run examples.glucoflow.app:app   # EMEUSE_PARTNER_CONFIG, or --local

Logs carry ids and counts, never a pseudonym: GlucoFlow keeps those in memory only.
"""

from __future__ import annotations

import structlog
from prometheus_client import Counter, Gauge

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, AlertSeverity, ReadingRecorded
from emeuse.partner import Envelope, PartnerApp
from examples.glucoflow.counts import GLUCOSE, PatientCounts

app = PartnerApp("glucoflow")
counts = PatientCounts()
log = structlog.get_logger("glucoflow")

GLUCOSE_READINGS = Counter(
    "glucoflow_glucose_readings_total", "Glucose readings counted (each reading id once)."
)
ALERTS = Counter("glucoflow_alerts_total", "Alerts counted (each alert id once).", ["severity"])
PATIENTS = Gauge("glucoflow_patients_followed", "Patients with a reading or an alert.")


@app.handles(ReadingRecorded)
async def on_reading(event: Envelope, reading: ReadingRecorded) -> None:
    if reading.loinc_code != GLUCOSE:
        return  # another measure of a patient who consents: not GlucoFlow's business
    if not counts.add_reading(reading.patient_pseudonym, reading.reading_id):
        log.info("glucoflow.duplicate_reading", reading_id=reading.reading_id)
        return
    GLUCOSE_READINGS.inc()
    PATIENTS.set(counts.patients)
    log.info(
        "glucoflow.reading_counted",
        reading_id=reading.reading_id,
        readings_of_patient=counts.readings_of(reading.patient_pseudonym),
    )


@app.handles(AlertRaised)
async def on_alert(event: Envelope, alert: AlertRaised) -> None:
    if not counts.add_alert(alert.patient_pseudonym, alert.alert_id):
        return
    ALERTS.labels(AlertSeverity.Name(alert.severity)).inc()
    PATIENTS.set(counts.patients)
    log.info(
        "glucoflow.alert_counted",
        alert_id=alert.alert_id,
        rule=alert.rule,
        alerts_of_patient=counts.alerts_of(alert.patient_pseudonym),
    )
