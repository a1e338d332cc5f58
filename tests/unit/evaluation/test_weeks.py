"""Weekly figures beside the monthly ones: ISO weeks, Monday to Sunday, asked by month."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.evaluation.v1 import evaluation_service_pb2 as api
from emeuse.registry import READING_RECORDED
from services.evaluation.domain import periods
from tests.unit.evaluation.partitions import Partitions
from tests.unit.evaluation.scenario import TELE, Sent, completed, person
from tests.unit.evaluation.test_grpc_api import Aborted, Context, two_instances

SUNDAY_29_MARCH = datetime(2026, 3, 29, 18, 0, tzinfo=UTC)  # ISO week 13
MONDAY_30_MARCH = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # week 14 begins
WEDNESDAY_1_APRIL = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)  # still week 14


def readings(when: datetime, patients: range) -> list[Sent]:
    return [
        completed(
            Sent(
                READING_RECORDED,
                ReadingRecorded(
                    reading_id=f"r-{n}-{when:%d}",
                    patient_pseudonym=person("w", n),
                    loinc_code="6301-6",
                ),
                person("w", n),
                TELE,
                "55",
                when,
            )
        )
        for n in patients
    ]


@pytest.fixture(scope="module")
def straddling() -> Partitions:
    """11 readings on Sunday 29 March, 12 on Monday 30 March, 13 on Wednesday 1 April, by
    the same 13 patients (the first 11, 12 and all 13)."""
    state = Partitions()
    for when, patients in (
        (SUNDAY_29_MARCH, range(11)),
        (MONDAY_30_MARCH, range(12)),
        (WEDNESDAY_1_APRIL, range(13)),
    ):
        for sent in readings(when, patients):
            state.handle(sent)
    return state


def ask(state: Partitions, first: str, last: str, period: int) -> dict[tuple[str, str], float]:
    request = api.GetIndicatorsRequest(
        experiment_id=TELE, territory="55", from_month=first, to_month=last, period=period
    )
    answer = asyncio.run(two_instances(state).GetIndicators(request, Context()))  # type: ignore[arg-type]
    return {
        (i.week or i.month, i.name): i.value
        for i in answer.indicators
        if i.name in ("chronic.readings", "chronic.patients_monitored")
    }


def test_a_week_straddling_two_months_holds_the_days_of_both(straddling: Partitions):
    weekly = ask(straddling, "2026-04", "2026-04", api.Period.PERIOD_WEEK)
    # April touches weeks 14 to 18; week 14 runs from Monday 30 March to Sunday 5 April.
    assert weekly == {
        ("2026-W14", "chronic.readings"): 25,
        ("2026-W14", "chronic.patients_monitored"): 13,
    }


def test_the_same_days_by_month_and_by_week(straddling: Partitions):
    monthly = ask(straddling, "2026-03", "2026-04", api.Period.PERIOD_MONTH)
    assert monthly == {
        ("2026-03", "chronic.readings"): 23,
        ("2026-03", "chronic.patients_monitored"): 12,
        ("2026-04", "chronic.readings"): 13,
        ("2026-04", "chronic.patients_monitored"): 13,
    }
    weekly = ask(straddling, "2026-03", "2026-03", api.Period.PERIOD_WEEK)
    assert weekly == {
        ("2026-W13", "chronic.readings"): 11,
        ("2026-W13", "chronic.patients_monitored"): 11,
        ("2026-W14", "chronic.readings"): 25,
        ("2026-W14", "chronic.patients_monitored"): 13,
    }


def test_unspecified_period_is_monthly(straddling: Partitions):
    assert ask(straddling, "2026-03", "2026-04", api.Period.PERIOD_UNSPECIFIED) == ask(
        straddling, "2026-03", "2026-04", api.Period.PERIOD_MONTH
    )


def test_an_unknown_period_is_refused():
    request = api.GetIndicatorsRequest(
        experiment_id=TELE, territory="55", from_month="2026-03", to_month="2026-03", period=9
    )
    with pytest.raises(Aborted) as refused:
        asyncio.run(two_instances(Partitions()).GetIndicators(request, Context()))  # type: ignore[arg-type]
    assert refused.value.args[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert "period" in refused.value.args[1]


def test_iso_weeks_belong_to_the_year_of_their_thursday():
    assert periods.week_of(datetime(2025, 12, 29, tzinfo=UTC)) == "2026-W01"
    assert periods.week_of(datetime(2027, 1, 3, tzinfo=UTC)) == "2026-W53"
    assert periods.weeks_touching("2026-01", "2026-01") == [f"2026-W0{n}" for n in range(1, 6)]
    assert periods.weeks_touching("2026-03", "2026-03") == [
        "2026-W09",
        "2026-W10",
        "2026-W11",
        "2026-W12",
        "2026-W13",
        "2026-W14",
    ]
