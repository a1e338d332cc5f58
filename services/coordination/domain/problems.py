"""Open problems of a person, found from their timeline, and who is at risk.

Each rule looks at one axis's entries and gives the problems open now, each with its
weight in the person's urgency, since when it is open and, for a problem that lasts a
window of time (two falls in a week), until when. A person is at risk with open problems
on two or more axes, or with repeated falls and a missed visit within the same week (the
home pattern the programme names). Rules and weights: docs/coordination.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from services.coordination.domain.timeline import Entry, Timeline, order

DAY_MS = 24 * 3600 * 1000
WEEK_MS, MONTH_MS = 7 * DAY_MS, 30 * DAY_MS
# Incidents that may mean the person is hurt or in danger now.
SERIOUS_INCIDENTS = frozenset({"fall", "panic", "inactivity", "night_wandering"})
FAILED_RECEIPTS = frozenset({"failed", "bounced"})
# Consecutive failed receipts after which a person counts as unreachable.
UNREACHABLE_AFTER = 3
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


def _by_subject(
    entries: Iterable[Entry], subject: Callable[[Entry], str]
) -> dict[str, list[Entry]]:
    found: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=order):
        found.setdefault(subject(entry), []).append(entry)
    return found


def chronic(entries: list[Entry], now_ms: int) -> list[Problem]:
    """An alert raised and not resolved: critical (5) or warning (2)."""
    found = []
    for alert, story in _by_subject(entries, lambda e: e["subject"]).items():
        kinds = {e["kind"] for e in story}
        raised = next((e for e in story if e["kind"] == "alert_raised"), None)
        if raised is None or "alert_resolved" in kinds:
            continue
        critical = raised["code"] == "critical"
        rule = "critical_alert_open" if critical else "alert_open"
        found.append(Problem("chronic", rule, alert, raised["at"], 5 if critical else 2))
    return found


def access(entries: list[Entry], now_ms: int) -> list[Problem]:
    """A request not booked yet (3), or flagged past its urgency's delay (4); a
    consultation missed in the last 30 days (3)."""
    booked = {e["related"] for e in entries if e["kind"] == "slot_booked"}
    found = []
    for request, story in _by_subject(
        (e for e in entries if e["kind"] != "slot_booked"), lambda e: e["subject"]
    ).items():
        kinds = {e["kind"]: e for e in story}
        asked = kinds.get("consultation_requested") or kinds.get("request_flagged")
        if asked is None or request in booked or "request_withdrawn" in kinds:
            continue
        if "request_flagged" in kinds:
            found.append(Problem("access", "request_flagged", request, asked["at"], 4))
        else:
            found.append(Problem("access", "request_not_booked", request, asked["at"], 3))
    for entry in entries:
        if entry["kind"] == "consultation_status_changed" and entry["code"] == "no_show":
            until = entry["at"] + MONTH_MS
            if now_ms < until:
                found.append(
                    Problem(
                        "access", "consultation_missed", entry["subject"], entry["at"], 3, until
                    )
                )
    return found


def home(entries: list[Entry], now_ms: int) -> list[Problem]:
    """An incident not resolved: serious (4) or other (2); two falls or more in the last 7
    days (4); a visit missed in the last 7 days (3)."""
    found = []
    for incident, story in _by_subject(
        (e for e in entries if e["kind"].startswith("incident_")), lambda e: e["subject"]
    ).items():
        raised = next((e for e in story if e["kind"] == "incident_raised"), None)
        if raised is None or any(e["kind"] == "incident_resolved" for e in story):
            continue
        serious = raised["code"] in SERIOUS_INCIDENTS
        rule = "serious_incident_open" if serious else "incident_open"
        found.append(Problem("home", rule, incident, raised["at"], 4 if serious else 2))
    incidents = [e for e in entries if e["kind"] == "incident_raised"]
    falls = sorted((e for e in incidents if e["code"] == "fall"), key=order, reverse=True)
    if (
        len(falls) >= 2
        and falls[0]["at"] - falls[1]["at"] < WEEK_MS
        and now_ms < falls[1]["at"] + WEEK_MS
    ):
        found.append(
            Problem(
                "home",
                "repeated_falls",
                falls[0]["subject"],
                falls[1]["at"],
                4,
                falls[1]["at"] + WEEK_MS,
            )
        )
    missed = [e for e in incidents if e["code"] == "visit_missed" and now_ms < e["at"] + WEEK_MS]
    if missed:
        last = max(missed, key=order)
        found.append(
            Problem("home", "visit_missed", last["subject"], last["at"], 3, last["at"] + WEEK_MS)
        )
    return found


def prevention(entries: list[Entry], now_ms: int) -> list[Problem]:
    """The last 3 message receipts failed or bounced (unreachable, 1); a programme the
    person withdrew from in the last 30 days (1)."""
    found = []
    receipts = sorted((e for e in entries if e["kind"] == "message_receipt"), key=order)
    last = receipts[-UNREACHABLE_AFTER:]
    if len(last) == UNREACHABLE_AFTER and all(e["code"] in FAILED_RECEIPTS for e in last):
        found.append(Problem("prevention", "unreachable", last[-1]["subject"], last[0]["at"], 1))
    for entry in entries:
        if entry["kind"] == "programme_ended" and entry["detail"] == "withdrawn":
            until = entry["at"] + MONTH_MS
            if now_ms < until:
                found.append(
                    Problem(
                        "prevention", "programme_withdrawn", entry["subject"], entry["at"], 1, until
                    )
                )
    return found


RULES = {"chronic": chronic, "access": access, "home": home, "prevention": prevention}


def open_problems(timeline: Timeline, now: datetime) -> list[Problem]:
    """Every open problem of the person, heaviest first, then oldest."""
    now_ms = ms(now)
    found = [
        problem
        for axis, rule in RULES.items()
        for problem in rule(timeline["axes"].get(axis, []), now_ms)
    ]
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
