"""Open problems of a person, found from their open items, and who is at risk.

Each rule looks at one axis's open items (open_items.py, kept beside the timeline's
bounded entries) and gives the problems open now, each with its weight in the person's
urgency, since when it is open and, for a problem that lasts a window of time (two falls
in a week), until when. A person is at risk with open problems
on two or more axes, or with repeated falls and a missed visit within the same week (the
home pattern the programme names). Rules and weights: docs/coordination.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from services.coordination.domain import open_items
from services.coordination.domain.open_items import (
    MONTH_MS,
    UNREACHABLE_AFTER,
    WEEK_MS,
    WINDOWS,
    OpenItems,
)
from services.coordination.domain.timeline import Timeline, order

# Incidents that may mean the person is hurt or in danger now.
SERIOUS_INCIDENTS = frozenset({"fall", "panic", "inactivity", "night_wandering"})
FAILED_RECEIPTS = frozenset({"failed", "bounced"})
HOME_PATTERN = frozenset({"repeated_falls", "visit_missed"})


@dataclass(frozen=True)
class Problem:
    axis: str
    rule: str
    subject: str
    since: int  # ms since the epoch
    weight: int
    until: int | None = None  # end of the window it lasts (ms), None while it is open

    def open_at(self, now_ms: int) -> bool:
        return self.until is None or now_ms < self.until


def to_dict(problem: Problem) -> dict[str, object]:
    return asdict(problem)


def from_dict(stored: dict[str, object]) -> Problem:
    return Problem(**stored)  # type: ignore[arg-type]


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def chronic(items: OpenItems, now_ms: int) -> list[Problem]:
    """An alert raised and not resolved: critical (5) or warning (2)."""
    found = []
    for alert, item in items["alerts"].items():
        critical = item["code"] == "critical"
        rule = "critical_alert_open" if critical else "alert_open"
        found.append(Problem("chronic", rule, alert, item["at"], 5 if critical else 2))
    return found


def _recent(items: OpenItems, fact: str, now_ms: int) -> list[dict[str, Any]]:
    """The kept facts of a kind whose window has not passed, oldest first."""
    found = [r for r in items["recent"] if r["fact"] == fact and now_ms < r["at"] + WINDOWS[fact]]
    return sorted(found, key=order)


def access(items: OpenItems, now_ms: int) -> list[Problem]:
    """A request not booked yet (3), or flagged past its urgency's delay (4); a
    consultation missed in the last 30 days (3)."""
    found = []
    for request, item in items["requests"].items():
        if item["flagged"]:
            found.append(Problem("access", "request_flagged", request, item["at"], 4))
        else:
            found.append(Problem("access", "request_not_booked", request, item["at"], 3))
    for missed in _recent(items, "no_show", now_ms):
        until = missed["at"] + MONTH_MS
        found.append(
            Problem("access", "consultation_missed", missed["subject"], missed["at"], 3, until)
        )
    return found


def home(items: OpenItems, now_ms: int) -> list[Problem]:
    """An incident not resolved: serious (4) or other (2); two falls or more in the last 7
    days (4); a visit missed in the last 7 days (3)."""
    found = []
    for incident, item in items["incidents"].items():
        serious = item["code"] in SERIOUS_INCIDENTS
        rule = "serious_incident_open" if serious else "incident_open"
        found.append(Problem("home", rule, incident, item["at"], 4 if serious else 2))
    falls = list(reversed(_recent(items, "fall", now_ms)))
    if len(falls) >= 2 and falls[0]["at"] - falls[1]["at"] < WEEK_MS:
        until = falls[1]["at"] + WEEK_MS
        found.append(
            Problem("home", "repeated_falls", falls[0]["subject"], falls[1]["at"], 4, until)
        )
    missed = _recent(items, "visit_missed", now_ms)
    if missed:
        last = missed[-1]
        found.append(
            Problem("home", "visit_missed", last["subject"], last["at"], 3, last["at"] + WEEK_MS)
        )
    return found


def prevention(items: OpenItems, now_ms: int) -> list[Problem]:
    """The last 3 message receipts failed or bounced (unreachable, 1); a programme the
    person withdrew from in the last 30 days (1)."""
    found = []
    last = items["receipts"][-UNREACHABLE_AFTER:]
    if len(last) == UNREACHABLE_AFTER and all(r["code"] in FAILED_RECEIPTS for r in last):
        found.append(Problem("prevention", "unreachable", last[-1]["subject"], last[0]["at"], 1))
    for ended in _recent(items, "withdrawn", now_ms):
        until = ended["at"] + MONTH_MS
        found.append(
            Problem("prevention", "programme_withdrawn", ended["subject"], ended["at"], 1, until)
        )
    return found


RULES = {"chronic": chronic, "access": access, "home": home, "prevention": prevention}


def open_problems(timeline: Timeline, now: datetime) -> list[Problem]:
    """Every open problem of the person, heaviest first, then oldest: from the open items
    kept beside the entries (found again from the entries for a timeline stored before)."""
    now_ms = ms(now)
    items = timeline.get("open") or open_items.rebuilt(timeline, now_ms)
    found = [problem for rule in RULES.values() for problem in rule(items, now_ms)]
    return sorted(found, key=lambda p: (-p.weight, p.since, p.rule, p.subject))


def at_risk(problems: list[Problem]) -> bool:
    """Open problems on two axes or more, or the home pattern (repeated falls and a missed
    visit within the same week)."""
    return len({p.axis for p in problems}) >= 2 or {p.rule for p in problems} >= HOME_PATTERN


def urgency(problems: list[Problem]) -> int:
    return sum(p.weight for p in problems)


def still_open(problems: Iterable[Problem], now: datetime) -> list[Problem]:
    """The problems whose window has not passed (those kept when the timeline last changed)."""
    now_ms = ms(now)
    return [p for p in problems if p.open_at(now_ms)]


def rank(urgency_of: int, oldest_since: int, person: str) -> tuple[int, int, str]:
    """A person's place in the list: most urgent first, then the oldest problem first."""
    return -urgency_of, oldest_since, person
