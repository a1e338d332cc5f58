"""The example partner counts glucose readings and alerts per patient, each once."""

from __future__ import annotations

import asyncio

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, AlertSeverity, ReadingRecorded
from emeuse.event.v1.envelope_pb2 import EventEnvelope
from examples.glucoflow import app as glucoflow
from examples.glucoflow.counts import PatientCounts
from tests.unit.partner.fakes import patient


def test_a_reading_delivered_twice_is_counted_once():
    counts = PatientCounts()
    assert counts.add_reading("psn-a", "r-1")
    assert not counts.add_reading("psn-a", "r-1")
    assert counts.add_reading("psn-a", "r-2")
    assert counts.readings_of("psn-a") == 2
    assert counts.readings_of("psn-b") == 0


def test_patients_with_a_reading_or_an_alert_are_followed():
    counts = PatientCounts()
    counts.add_reading("psn-a", "r-1")
    counts.add_alert("psn-b", "a-1")
    counts.add_alert("psn-a", "a-2")
    assert counts.patients == 2


def test_the_handlers_count_glucose_readings_and_alerts_of_each_patient():
    person = patient()
    event = EventEnvelope(event_id="e-1")
    glucose = ReadingRecorded(reading_id="r-1", patient_pseudonym=person, loinc_code="2339-0")
    weight = ReadingRecorded(reading_id="r-2", patient_pseudonym=person, loinc_code="29463-7")
    alert = AlertRaised(
        alert_id="a-1", patient_pseudonym=person, severity=AlertSeverity.ALERT_SEVERITY_CRITICAL
    )

    async def deliver() -> None:
        for reading in (glucose, glucose, weight):
            await glucoflow.on_reading(event, reading)
        await glucoflow.on_alert(event, alert)

    asyncio.run(deliver())
    assert glucoflow.counts.readings_of(person) == 1
    assert glucoflow.counts.alerts_of(person) == 1


def test_the_app_consumes_readings_and_alerts():
    assert glucoflow.app.event_types == [
        "emeuse.chronic.v1.AlertRaised",
        "emeuse.chronic.v1.ReadingRecorded",
    ]
