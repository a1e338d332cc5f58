"""Programme timelines: what is sent when, from a programme's reference date.

Pregnancy steps count weeks of amenorrhoea (SA, semaines d'aménorrhée: weeks since the
first day of the last period). The expected due date is the term as French maternity teams
give it, 41 SA + 0: the start of pregnancy + 9 months, 287 days after that first day (WHO
and English-speaking countries use 40 weeks; sources in docs/prevention.md, Rules: Programmes).
Step "week_w" goes out on the first day of w SA (w SA + 0). Parental coaching
counts the child's age in calendar months: "month_n" falls on the child's n-th
month-birthday (the same day of the month; the month's last day when it has no such day).
The diabetes education series counts days from its start. Each step goes out at 10:00
local time on its day. A step whose day passed more than LATE_STEP ago is not sent late;
one that passed within it is sent at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta

from services.prevention.domain.timing import local_morning

PREGNANCY = "pregnancy"
PARENTAL_COACHING = "parental_coaching"
DIABETES_EDUCATION = "diabetes_education"
# The French term: 41 weeks of amenorrhoea + 0 days.
TERM_WEEKS = 41
TERM_DAYS = 7 * TERM_WEEKS
# Parental coaching follows a child up to this age.
COACHING_YEARS = 3
# A step whose day passed more than this long ago is not sent late; within it, at once.
LATE_STEP = timedelta(days=2)

# (week of amenorrhoea, template): the three ultrasounds, the early prenatal interview,
# monthly visits, birth preparation and the maternity's welcome (Maison des Parents).
PREGNANCY_STEPS = (
    (12, "pregnancy.ultrasound.first_trimester"),
    (16, "pregnancy.early_prenatal_interview"),
    (20, "pregnancy.prenatal_visit"),
    (22, "pregnancy.ultrasound.second_trimester"),
    (28, "pregnancy.birth_preparation"),
    (32, "pregnancy.ultrasound.third_trimester"),
    (36, "pregnancy.maternity_visit"),
    (39, "pregnancy.due_soon"),
)
# (child's age, step, template): mandatory vaccinations at 2, 4, 11 and 12 months.
PARENTING_STEPS = (
    (relativedelta(days=7), "week_1", "parenting.first_weeks"),
    (relativedelta(months=1), "month_1", "parenting.month_1"),
    (relativedelta(months=2), "month_2", "parenting.vaccines.month_2"),
    (relativedelta(months=4), "month_4", "parenting.vaccines.month_4"),
    (relativedelta(months=6), "month_6", "parenting.food_diversification"),
    (relativedelta(months=11), "month_11", "parenting.vaccines.month_11"),
    (relativedelta(months=12), "month_12", "parenting.vaccines.month_12"),
    (relativedelta(months=24), "month_24", "parenting.second_year"),
    (relativedelta(months=36), "month_36", "parenting.school_readiness"),
)
# (days after the start, template).
DIABETES_SERIES = (
    (1, "education.diabetes.welcome"),
    (7, "education.diabetes.hypoglycaemia"),
    (14, "education.diabetes.foot_care"),
    (30, "education.diabetes.nutrition"),
    (60, "education.diabetes.physical_activity"),
    (90, "education.diabetes.eye_screening"),
)


@dataclass(frozen=True)
class Step:
    step: str
    template_id: str
    due_at: datetime


def last_period_start(due_date: date) -> date:
    """The first day of amenorrhoea (0 SA + 0) of a pregnancy with this French term."""
    return due_date - timedelta(days=TERM_DAYS)


def pregnancy_week_start(due_date: date, week: int) -> date:
    """The first day of `week` SA (week SA + 0)."""
    return last_period_start(due_date) + timedelta(weeks=week)


def amenorrhoea_age(due_date: date, day: date) -> tuple[int, int]:
    """How far a pregnancy is on `day`, as (weeks, days) of amenorrhoea: 41 SA + 0 on the term."""
    weeks, days = divmod((day - last_period_start(due_date)).days, 7)
    return weeks, days


def pregnancy_timeline(due_date: date) -> list[Step]:
    return [
        Step(f"week_{week}", template, local_morning(pregnancy_week_start(due_date, week)))
        for week, template in PREGNANCY_STEPS
    ]


def parenting_timeline(born_on: date) -> list[Step]:
    return [
        Step(step, template, local_morning(born_on + age))
        for age, step, template in PARENTING_STEPS
    ]


def diabetes_series(started: datetime) -> list[Step]:
    return [
        Step(f"day_{days}", template, local_morning(started.date() + timedelta(days=days)))
        for days, template in DIABETES_SERIES
    ]


def passed(step: Step, now: datetime) -> bool:
    """Whether the step's day passed more than LATE_STEP ago: it is not sent late."""
    return step.due_at < now - LATE_STEP


def check_due_date(due_date: date, today: date) -> None:
    """A due date no further than a pregnancy ahead (the term, 41 SA, from a last period
    that began today), and not long past (a late update)."""
    if due_date > today + timedelta(days=TERM_DAYS):
        raise ValueError(
            "expected due date is more than 41 weeks ahead (the term is at 41 weeks of amenorrhoea)"
        )
    if due_date < today - timedelta(days=60):
        raise ValueError("expected due date is more than 60 days past")


def check_born_on(born_on: date, today: date) -> None:
    if born_on > today:
        raise ValueError("the child's day of arrival is in the future")
    if born_on < today - relativedelta(years=COACHING_YEARS):
        raise ValueError("parental coaching follows children up to 3 years old")
