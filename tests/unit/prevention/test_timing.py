"""Quiet hours (French local time) and the frequency cap."""

from datetime import UTC, datetime, timedelta

import pytest

from services.prevention.domain.timing import QuietHours, after_quiet_hours, cap_allows_at

NIGHT = QuietHours(21 * 60, 8 * 60)  # 21:00 to 08:00, across midnight


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    # March 2027: Paris is UTC+1 until the 28th.
    return datetime(2027, 3, day, hour - 1, minute, tzinfo=UTC)


def test_quiet_hours_across_midnight_cover_the_night_only() -> None:
    assert NIGHT.covers(paris(2, 22))
    assert NIGHT.covers(paris(2, 7, 59))
    assert not NIGHT.covers(paris(2, 8))
    assert not NIGHT.covers(paris(2, 20, 59))


def test_a_message_due_at_night_waits_for_the_morning() -> None:
    assert after_quiet_hours(paris(2, 22, 30), [NIGHT]) == paris(3, 8)
    assert after_quiet_hours(paris(3, 6), [NIGHT]) == paris(3, 8)


def test_a_message_due_outside_quiet_hours_goes_at_once() -> None:
    assert after_quiet_hours(paris(2, 10), [NIGHT]) == paris(2, 10)
    assert after_quiet_hours(paris(2, 10), [QuietHours()]) == paris(2, 10)


def test_the_person_s_and_the_campaign_s_quiet_hours_both_hold() -> None:
    lunch = QuietHours(12 * 60, 14 * 60)
    evening = QuietHours(13 * 60, 21 * 60)
    assert after_quiet_hours(paris(2, 12, 30), [lunch, evening, NIGHT]) == paris(3, 8)


def test_quiet_hours_follow_summer_time() -> None:
    # July: Paris is UTC+2, so 22:00 local is 20:00 UTC.
    assert NIGHT.covers(datetime(2027, 7, 1, 20, 0, tzinfo=UTC))
    assert after_quiet_hours(datetime(2027, 7, 1, 20, 0, tzinfo=UTC), [NIGHT]) == datetime(
        2027, 7, 2, 6, 0, tzinfo=UTC
    )


def test_impossible_quiet_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="minutes after midnight"):
        QuietHours(0, 1440)


def test_the_frequency_cap_lets_messages_through_until_it_is_reached() -> None:
    now = paris(10, 10)
    week = timedelta(days=7)
    assert cap_allows_at([], now, 2, week) is None
    assert cap_allows_at([now - timedelta(days=1)], now, 2, week) is None


def test_a_capped_message_waits_until_the_oldest_counted_leaves_the_period() -> None:
    now = paris(10, 10)
    week = timedelta(days=7)
    sent = [now - timedelta(days=8), now - timedelta(days=5), now - timedelta(days=1)]
    assert cap_allows_at(sent, now, 2, week) == now - timedelta(days=5) + week


def test_no_cap_means_no_limit() -> None:
    now = paris(10, 10)
    assert cap_allows_at([now] * 50, now, 0, timedelta(days=7)) is None
