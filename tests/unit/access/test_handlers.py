import asyncio
from datetime import UTC, datetime

from emeuse.access.v1.access_events_pb2 import CareSummaryMeasure, Urgency
from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, AlertSeverity
from emeuse.runtime.pseudonym import random_pseudonym
from services.access.handlers import known_ids, request_for_alert, requests_of, with_request

PATIENT = random_pseudonym()
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
INR = [CareSummaryMeasure(loinc_code="34714-6", value=5.6, unit="{INR}")]


def alert(severity=AlertSeverity.ALERT_SEVERITY_CRITICAL, alert_id="a-1"):
    return AlertRaised(
        alert_id=alert_id,
        patient_pseudonym=PATIENT,
        severity=severity,
        rule="threshold.critical_high",
    )


class FakeChronic:
    """Answers like the chronic service would, or not at all."""

    def __init__(self, answer):
        self.answer = answer
        self.asked = []

    async def care_summary(self, patient):
        self.asked.append(patient)
        return self.answer


def request(alert_, chronic, known=frozenset()):
    return asyncio.run(
        request_for_alert(
            alert_, known_request_ids=set(known), care_summary=chronic.care_summary, now=NOW
        )
    )


def test_a_critical_alert_opens_an_immediate_request_with_the_care_summary():
    chronic = FakeChronic(INR)
    opened = request(alert(), chronic)
    assert opened is not None
    assert opened.urgency == Urgency.URGENCY_IMMEDIATE
    assert opened.reason_code == "chronic.alert.critical"
    assert opened.alert_id == "a-1"
    assert list(opened.care_summary) == INR
    assert opened.care_summary_available
    assert chronic.asked == [PATIENT]


def test_a_warning_opens_no_request():
    chronic = FakeChronic(INR)
    assert request(alert(AlertSeverity.ALERT_SEVERITY_WARNING), chronic) is None
    assert chronic.asked == []


def test_an_alert_seen_twice_opens_one_request():
    first = request(alert(), FakeChronic(INR))
    assert first is not None
    state = with_request({}, first)
    assert request(alert(), FakeChronic(INR), known_ids(state)) is None


def test_when_chronic_cannot_answer_the_request_is_made_without_summary():
    opened = request(alert(), FakeChronic(None))
    assert opened is not None
    assert not opened.care_summary_available
    assert list(opened.care_summary) == []


def test_requests_survive_their_table_form():
    opened = request(alert(), FakeChronic(INR))
    assert opened is not None
    assert requests_of(with_request({}, opened)) == [opened]
