"""Who is at risk: open problems on two axes or more, or the home pattern, most urgent
first (rules: docs/coordination.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emeuse.registry import (
    ALERT_RAISED,
    ALERT_RESOLVED,
    CONSULTATION_REQUESTED,
    CONSULTATION_STATUS_CHANGED,
    DELIVERY_RECEIPT_REPORTED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    SLOT_BOOKED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from services.coordination.domain import problems
from services.coordination.grpc_api import (
    MAX_PEOPLE_PER_PAGE,
    people_at_risk,
    people_page_size,
)
from tests.unit.coordination.partitions import Partitions
from tests.unit.coordination.stories import (
    alert_raised,
    alert_resolved,
    at,
    booked,
    incident,
    incident_resolved,
    no_show,
    receipt,
    requested,
)


def rules_of(bus: Partitions, person: str, now_minutes: float = 60) -> set[str]:
    return {p.rule for p in problems.open_problems(bus.timeline(person), at(now_minutes))}


def listed(bus: Partitions, now_minutes: float = 60, territory: str = "55"):
    return people_at_risk(bus.with_problems(), territory, at(now_minutes), None)


def test_an_open_critical_alert_and_a_request_not_booked_put_a_person_at_risk():
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    bus.send(CONSULTATION_REQUESTED, requested(person, "req-1", at(5), "al-1"), at(5))
    assert rules_of(bus, person) == {"critical_alert_open", "request_not_booked"}
    [shown] = listed(bus)
    assert shown.person_pseudonym == person
    assert shown.urgency == 5 + 3
    assert [p.rule for p in shown.problems] == ["critical_alert_open", "request_not_booked"]


def test_a_booking_or_a_resolution_takes_the_person_off_the_list():
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    bus.send(CONSULTATION_REQUESTED, requested(person, "req-1", at(5), "al-1"), at(5))
    bus.send(SLOT_BOOKED, booked(person, "req-1", "bk-1", at(20)), at(20))
    assert rules_of(bus, person) == {"critical_alert_open"}
    assert listed(bus) == []
    bus.send(ALERT_RESOLVED, alert_resolved(person, "al-1", at(30)), at(30))
    assert rules_of(bus, person) == set()
    assert bus.with_problems() == []


def test_problems_on_one_axis_only_are_not_listed():
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    bus.send(ALERT_RAISED, alert_raised(person, "al-2", at(1), "WARNING"), at(1))
    assert rules_of(bus, person) == {"critical_alert_open", "alert_open"}
    assert listed(bus) == []


def test_two_falls_and_a_missed_visit_in_a_week_put_a_person_at_risk_for_a_week():
    bus, person = Partitions(), random_pseudonym()
    days = 24 * 60
    bus.send(INCIDENT_RAISED, incident(person, "f-1", at(0)), at(0))
    bus.send(INCIDENT_RESOLVED, incident_resolved(person, "f-1", at(30)), at(30))
    bus.send(INCIDENT_RAISED, incident(person, "f-2", at(2 * days)), at(2 * days))
    bus.send(INCIDENT_RESOLVED, incident_resolved(person, "f-2", at(2 * days + 30)), at(2 * days))
    missed = incident(person, "v-1", at(3 * days), "VISIT_MISSED")
    bus.send(INCIDENT_RAISED, missed, at(3 * days))
    now = 3 * days + 60
    assert rules_of(bus, person, now) == {"repeated_falls", "visit_missed", "incident_open"}
    assert [p.person_pseudonym for p in listed(bus, now)] == [person]
    # A week after the first fall, the two falls are no longer in the same week.
    assert listed(bus, 7 * days + 1) == []


def test_falls_more_than_a_week_apart_are_not_repeated_falls():
    bus, person = Partitions(), random_pseudonym()
    for n, day in enumerate((0, 9)):
        when = at(day * 24 * 60)
        bus.send(INCIDENT_RAISED, incident(person, f"f-{n}", when), when)
        bus.send(INCIDENT_RESOLVED, incident_resolved(person, f"f-{n}", when), when)
    assert "repeated_falls" not in rules_of(bus, person, 9 * 24 * 60 + 1)


def test_a_missed_consultation_and_an_unreachable_person_count_on_their_axes():
    bus, person = Partitions(), random_pseudonym()
    bus.send(CONSULTATION_REQUESTED, requested(person, "req-1", at(0)), at(0))
    bus.send(SLOT_BOOKED, booked(person, "req-1", "bk-1", at(1)), at(1))
    bus.send(CONSULTATION_STATUS_CHANGED, no_show(person, "req-1", "bk-1", at(60)), at(60))
    for n in range(3):
        message = receipt(person, f"m-{n}", at(70 + n), "FAILED")
        bus.send(DELIVERY_RECEIPT_REPORTED, message, at(70 + n))
    assert rules_of(bus, person, 80) == {"consultation_missed", "unreachable"}
    [shown] = listed(bus, 80)
    assert shown.urgency == 3 + 1
    # 30 days on, the missed consultation is no longer an open problem.
    assert listed(bus, 80 + 31 * 24 * 60) == []


def test_the_most_urgent_come_first_then_those_waiting_longest():
    bus = Partitions()
    light, heavy, older = (random_pseudonym() for _ in range(3))
    for person, start, severity in ((light, 0, "WARNING"), (heavy, 10, "CRITICAL")):
        bus.send(ALERT_RAISED, alert_raised(person, f"al-{person}", at(start), severity), at(start))
        bus.send(CONSULTATION_REQUESTED, requested(person, f"r-{person}", at(start + 1)), at(start))
    bus.send(ALERT_RAISED, alert_raised(older, "al-o", at(-30)), at(-30))
    bus.send(CONSULTATION_REQUESTED, requested(older, "r-o", at(-29)), at(-29))
    assert [p.person_pseudonym for p in listed(bus)] == [older, heavy, light]


def test_the_list_is_per_territory_and_pages_after_the_cursor():
    bus = Partitions()
    people = [random_pseudonym() for _ in range(4)]
    for n, person in enumerate(people):
        territory = "54" if n == 3 else "55"
        message = alert_raised(person, f"al-{n}", at(n))
        bus.send(ALERT_RAISED, message, at(n), territory=territory)
        request = requested(person, f"r-{n}", at(n))
        request.territory = territory
        bus.send(CONSULTATION_REQUESTED, request, at(n), territory=territory)
    first = listed(bus)
    assert [p.person_pseudonym for p in first] == people[:3]
    assert [p.person_pseudonym for p in listed(bus, territory="54")] == [people[3]]
    cursor = problems.rank(first[0].urgency, first[0].oldest_since.ToMilliseconds(), people[0])
    rest = people_at_risk(bus.with_problems(), "55", at(60), cursor)
    assert [p.person_pseudonym for p in rest] == people[1:3]


def test_a_person_who_moves_territory_is_listed_in_the_new_one_only():
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0), territory="55")
    request = requested(person, "r-1", at(1))
    request.territory = "54"
    bus.send(CONSULTATION_REQUESTED, request, at(1), territory="54")
    assert listed(bus, territory="55") == []
    assert [p.person_pseudonym for p in listed(bus, territory="54")] == [person]


def test_problems_kept_stay_true_only_within_their_window():
    found = [
        problems.Problem("home", "visit_missed", "v-1", 0, 3, until=1000),
        problems.Problem("chronic", "critical_alert_open", "al-1", 0, 5),
    ]
    assert problems.at_risk(problems.still_open(found, at(0) - timedelta(days=365 * 100)))
    later = [p.rule for p in problems.still_open(found, at(0))]
    assert later == ["critical_alert_open"]


def test_a_page_of_people_is_at_most_what_one_audited_call_can_name():
    assert people_page_size(0) == 50
    assert people_page_size(MAX_PEOPLE_PER_PAGE) == MAX_PEOPLE_PER_PAGE
    with pytest.raises(ValueError, match="page_size must be 0 to 100"):
        people_page_size(MAX_PEOPLE_PER_PAGE + 1)


def test_a_person_whose_windows_have_passed_is_forgotten_when_the_last_one_ends():
    bus, person = Partitions(), random_pseudonym()
    days = 24 * 60
    bus.send(CONSULTATION_REQUESTED, requested(person, "req-1", at(0)), at(0))
    bus.send(SLOT_BOOKED, booked(person, "req-1", "bk-1", at(1)), at(1))
    bus.send(CONSULTATION_STATUS_CHANGED, no_show(person, "req-1", "bk-1", at(60)), at(60))
    missed = incident(person, "v-1", at(2 * days), "VISIT_MISSED")
    bus.send(INCIDENT_RAISED, missed, at(2 * days))
    bus.send(INCIDENT_RESOLVED, incident_resolved(person, "v-1", at(2 * days + 5)), at(2 * days))
    [(key, kept)] = bus.with_problems()
    assert {p["rule"] for p in kept} == {"consultation_missed", "visit_missed"}
    # The missed visit's week ends first, then the missed consultation's 30 days.
    first_end = at(2 * days) + timedelta(days=7)
    assert bus.deadline(key) == first_end
    following = bus.fire(key, first_end)
    [(_, kept)] = bus.with_problems()
    assert [p["rule"] for p in kept] == ["consultation_missed"]
    assert following == at(60) + timedelta(days=30)
    assert bus.fire(key, following) is None
    assert bus.with_problems() == []
