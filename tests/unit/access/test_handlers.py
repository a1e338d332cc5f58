import asyncio

import pytest

from emeuse.access.v1.access_events_pb2 import (
    CareSummaryMeasure,
    Profession,
    RequesterRole,
    Urgency,
)
from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, AlertSeverity
from services.access.handlers import request_for_alert
from services.access.scheduling import check_request
from tests.unit.access.meuse import (
    NOW,
    VERDUN,
    Meuse,
    at,
    availability,
    booked,
    consultation,
    patient,
    practitioner,
)

PATIENT = patient("inr-patient")
INR = [CareSummaryMeasure(loinc_code="34714-6", value=5.6, unit="{INR}")]


def alert(severity=AlertSeverity.ALERT_SEVERITY_CRITICAL, alert_id="alert-inr-1"):
    return AlertRaised(
        alert_id=alert_id,
        patient_pseudonym=PATIENT,
        severity=severity,
        rule="threshold.critical_high",
        loinc_code="34714-6",
    )


class FakeChronic:
    """Answers like the chronic service would, or not at all (None)."""

    def __init__(self, answer):
        self.answer = answer
        self.asked = []

    async def care_summary(self, patient_):
        self.asked.append(patient_)
        return self.answer


def request(alert_, chronic, territory="55"):
    return asyncio.run(
        request_for_alert(alert_, territory=territory, care_summary=chronic.care_summary, now=NOW)
    )


def test_a_critical_alert_asks_for_an_immediate_gp_consultation_with_the_care_summary():
    chronic = FakeChronic(INR)
    asked = request(alert(), chronic)
    assert asked is not None
    assert asked.territory == "55"
    assert asked.patient_pseudonym == PATIENT
    assert asked.urgency == Urgency.URGENCY_IMMEDIATE
    assert asked.profession == Profession.PROFESSION_GP
    assert asked.specialty == ""
    assert asked.reason_code == "chronic.alert.critical"
    assert asked.requested_by == RequesterRole.REQUESTER_ROLE_SERVICE
    assert asked.cause_id == "alert-inr-1"
    assert list(asked.care_summary) == INR
    assert asked.care_summary_available
    assert asked.requested_at.ToDatetime().replace(tzinfo=NOW.tzinfo) == NOW
    assert chronic.asked == [PATIENT]
    check_request(asked)  # a request the scheduler accepts
    # No place at all: nothing on the bus locates the patient's home.
    assert not asked.HasField("place")


def test_the_request_id_is_derived_from_the_alert():
    first = request(alert(), FakeChronic(INR))
    again = request(alert(), FakeChronic(None))
    other = request(alert(alert_id="alert-inr-2"), FakeChronic(INR))
    assert first is not None and again is not None and other is not None
    assert first.request_id == again.request_id
    assert other.request_id != first.request_id
    assert first.request_id not in ("", "alert-inr-1")


@pytest.mark.parametrize(
    "severity", [AlertSeverity.ALERT_SEVERITY_WARNING, AlertSeverity.ALERT_SEVERITY_UNSPECIFIED]
)
def test_a_warning_asks_for_nothing_and_does_not_ask_chronic(severity):
    chronic = FakeChronic(INR)
    assert request(alert(severity), chronic) is None
    assert chronic.asked == []


def test_when_chronic_cannot_answer_the_request_is_made_without_summary():
    asked = request(alert(), FakeChronic(None))
    assert asked is not None
    assert asked.urgency == Urgency.URGENCY_IMMEDIATE
    assert not asked.care_summary_available
    assert list(asked.care_summary) == []


def test_a_known_patient_with_no_measure_has_an_empty_but_available_summary():
    asked = request(alert(), FakeChronic([]))
    assert asked is not None
    assert asked.care_summary_available
    assert list(asked.care_summary) == []


def test_the_request_from_a_critical_alert_is_booked_before_an_earlier_routine_one():
    meuse = Meuse()
    meuse.register(practitioner("gp-verdun", VERDUN))
    asked = request(alert(), FakeChronic(INR))
    assert asked is not None
    meuse.ask(consultation("routine-1", requested_at=at(7)))
    meuse.ask(asked)
    result = meuse.publish(availability("gp-verdun", at(9)))
    assert [(b.request_id, b.slot_id) for b in booked(result)] == [
        (asked.request_id, "gp-verdun-1130-0900")
    ]
    # Delivered twice, the alert's request is one request.
    assert meuse.ask(asked).outcome == "duplicate"
