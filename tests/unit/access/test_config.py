from datetime import timedelta

import pytest

from emeuse.runtime.settings import SettingsError
from services.access.config import (
    DEFAULT_BOOKING_DELAYS,
    parse_booking_delays,
    parse_coordinators,
)
from services.access.domain.agenda import IMMEDIATE, ROUTINE, SAME_DAY, WITHIN_7_DAYS

NAME = "EMEUSE_ACCESS_BOOKING_DELAYS"


def test_booking_delays_in_seconds_per_urgency():
    delays = parse_booking_delays(
        NAME, " immediate=600, same_day=3600,within_7_days=172800,routine=604800, "
    )
    assert delays == {
        IMMEDIATE: timedelta(minutes=10),
        SAME_DAY: timedelta(hours=1),
        WITHIN_7_DAYS: timedelta(days=2),
        ROUTINE: timedelta(days=7),
    }
    assert set(parse_booking_delays(NAME, DEFAULT_BOOKING_DELAYS)) == {
        IMMEDIATE,
        SAME_DAY,
        WITHIN_7_DAYS,
        ROUTINE,
    }


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "no delay for immediate, same_day, within_7_days, routine"),
        ("immediate=900,same_day=7200,within_7_days=86400", "no delay for routine"),
        ("immediate=900,same_day=7200,within_7_days=86400,routine=0", ">= 1"),
        ("immediate=-900,same_day=7200,within_7_days=86400,routine=1", ">= 1"),
        ("immediate=15min,same_day=7200,within_7_days=86400,routine=1", ">= 1"),
        ("immediate=,same_day=7200,within_7_days=86400,routine=1", ">= 1"),
        ("immediate=900,urgent=60,same_day=7200,within_7_days=86400,routine=1", "'urgent'"),
        ("IMMEDIATE=900,same_day=7200,within_7_days=86400,routine=1", "unknown urgency"),
    ],
)
def test_booking_delays_need_every_urgency_and_positive_seconds(raw, says):
    with pytest.raises(SettingsError, match=NAME) as refused:
        parse_booking_delays(NAME, raw)
    assert says in str(refused.value)


def test_coordinators_default_per_territory_and_can_be_named():
    assert parse_coordinators("C", "") == {
        "52": "coordination-52",
        "54": "coordination-54",
        "55": "coordination-55",
    }
    named = parse_coordinators("C", "55=dac-meuse, 54=dac-54")
    assert named == {"52": "coordination-52", "54": "dac-54", "55": "dac-meuse"}


@pytest.mark.parametrize("raw", ["57=dac-moselle", "meuse=dac-meuse", "55=", "55"])
def test_coordinators_refuse_an_unknown_territory_or_no_coordinator(raw):
    with pytest.raises(SettingsError, match="EMEUSE_ACCESS_COORDINATORS"):
        parse_coordinators("EMEUSE_ACCESS_COORDINATORS", raw)
