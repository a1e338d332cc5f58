"""Parental coaching counts the child's age in calendar months: each "month_n" step falls
on the child's n-th month-birthday, as French PMI teams and the vaccination calendar count
it, not every 30 or 30.44 days."""

from datetime import date, timedelta

import pytest

from services.prevention.domain.timelines import check_born_on, parenting_timeline
from services.prevention.domain.timing import LOCAL


def days_of(born_on: date) -> dict[str, date]:
    return {s.step: s.due_at.astimezone(LOCAL).date() for s in parenting_timeline(born_on)}


def month_birthday(born_on: date, months: int) -> date:
    """The same day of the month, `months` later (the child's month-birthday)."""
    year, month = divmod(born_on.month - 1 + months, 12)
    return born_on.replace(year=born_on.year + year, month=month + 1)


@pytest.mark.parametrize("born_on", [date(2027, 1, 15), date(2026, 6, 3), date(2027, 10, 28)])
def test_each_month_step_falls_on_the_childs_month_birthday(born_on: date) -> None:
    days = days_of(born_on)
    months = {step: int(step.removeprefix("month_")) for step in days if step != "week_1"}
    assert set(months.values()) == {1, 2, 4, 6, 11, 12, 24, 36}
    for step, n in months.items():
        assert days[step] == month_birthday(born_on, n), step
    assert days["week_1"] == born_on + timedelta(days=7)


def test_a_child_born_on_the_31st_has_the_months_last_day_as_month_birthday() -> None:
    days = days_of(date(2027, 1, 31))
    assert days["month_1"] == date(2027, 2, 28)
    assert days["month_2"] == date(2027, 3, 31)
    assert days["month_4"] == date(2027, 5, 31)
    assert days["month_6"] == date(2027, 7, 31)
    assert days["month_11"] == date(2027, 12, 31)
    assert days["month_12"] == date(2028, 1, 31)


def test_a_child_born_on_29_february_turns_one_on_28_february() -> None:
    days = days_of(date(2028, 2, 29))
    assert days["month_12"] == date(2029, 2, 28)
    assert days["month_24"] == date(2030, 2, 28)


def test_coaching_follows_a_child_up_to_the_third_birthday() -> None:
    today = date(2030, 3, 1)
    check_born_on(date(2027, 3, 1), today)
    with pytest.raises(ValueError, match="3 years"):
        check_born_on(date(2027, 2, 28), today)
