"""The periods figures are kept for: calendar months (YYYY-MM) and ISO weeks (YYYY-Www).

An ISO week runs Monday to Sunday and belongs to the ISO year of its Thursday, so a week may
straddle two months (or two years: 2026-W01 starts on 2025-12-29). Weeks are asked by the
months they touch: every week with at least one day in the months asked.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
WEEK = re.compile(r"^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$")


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year:04d}-W{week:02d}"


def first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def last_day(month: str) -> date:
    year, number = int(month[:4]), int(month[5:7])
    following = date(year + number // 12, number % 12 + 1, 1)
    return following - timedelta(days=1)


def monday_of(week: str) -> date:
    return date.fromisocalendar(int(week[:4]), int(week[6:]), 1)


def week_touches(week: str, first_month: str, last_month: str) -> bool:
    monday = monday_of(week)
    return monday <= last_day(last_month) and monday + timedelta(days=6) >= first_day(first_month)


def weeks_touching(first_month: str, last_month: str) -> list[str]:
    """Every ISO week with a day in the months, in order."""
    day, end = first_day(first_month), last_day(last_month)
    day -= timedelta(days=day.weekday())
    out = []
    while day <= end:
        out.append(week_of(datetime(day.year, day.month, day.day)))
        day += timedelta(days=7)
    return out
