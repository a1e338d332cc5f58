"""The coordination gauges: the timelines, entries, open items and people at risk of the
partitions an instance holds, right from the moment it opens them (a restart, a
rebalance), then kept as batches commit."""

from __future__ import annotations

from datetime import timedelta

from emeuse.registry import (
    ALERT_RAISED,
    ALERT_RESOLVED,
    CONSULTATION_REQUESTED,
    INCIDENT_RAISED,
    INCIDENT_RESOLVED,
    SLOT_BOOKED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from services.coordination import figures
from services.coordination.metrics import HELD
from tests.unit.coordination.partitions import Partitions, partition_of
from tests.unit.coordination.stories import (
    alert_raised,
    alert_resolved,
    at,
    booked,
    incident,
    incident_resolved,
    requested,
)


def gauges() -> dict[str, float]:
    names = [figures.TIMELINES, figures.ENTRIES]
    names += [figures.open_items(kind) for kind in figures.OPEN_KINDS]
    names += [figures.at_risk(t) for t in ("52", "54", "55")]
    return {name: HELD.value(name) for name in names}


def at_risk_with_an_alert_and_a_request(bus: Partitions, person: str, territory: str) -> None:
    bus.send(ALERT_RAISED, alert_raised(person, f"al-{person}", at(0)), at(0), territory)
    request = requested(person, f"r-{person}", at(1))
    request.territory = territory
    bus.send(CONSULTATION_REQUESTED, request, at(1), territory)


def test_the_gauges_follow_each_committed_change():
    bus = Partitions()
    bus.open_here()
    ana, ben, chloe = (random_pseudonym() for _ in range(3))
    at_risk_with_an_alert_and_a_request(bus, ana, "55")
    at_risk_with_an_alert_and_a_request(bus, ben, "54")
    bus.send(INCIDENT_RAISED, incident(chloe, "f-1", at(2)), at(2))
    assert gauges() == {
        "timelines": 3,
        "entries": 5,
        "open:alerts": 2,
        "open:requests": 2,
        "open:incidents": 1,
        "open:recent": 1,  # chloe's fall counts for a week
        "at_risk:52": 0,
        "at_risk:54": 1,
        "at_risk:55": 1,
    }
    bus.send(SLOT_BOOKED, booked(ben, f"r-{ben}", "bk-1", at(3)), at(3))
    bus.send(ALERT_RESOLVED, alert_resolved(ana, f"al-{ana}", at(4)), at(4))
    bus.send(INCIDENT_RESOLVED, incident_resolved(chloe, "f-1", at(5)), at(5))
    after = gauges()
    assert after["entries"] == 8
    assert (after["open:alerts"], after["open:requests"], after["open:incidents"]) == (1, 1, 0)
    assert (after["at_risk:54"], after["at_risk:55"]) == (0, 0)


def test_an_instance_opening_its_partitions_again_shows_what_it_showed_before():
    bus = Partitions()
    bus.open_here()
    for n in range(12):
        at_risk_with_an_alert_and_a_request(bus, random_pseudonym(), ("54", "55")[n % 2])
    before = gauges()
    bus.close_here()  # the instance stops: it holds nothing
    assert set(gauges().values()) == {0}
    bus.open_here()  # and starts again: counted from the stored state, no new event
    assert gauges() == before


def test_partitions_split_between_two_instances_add_up_to_one_holding_them_all():
    bus = Partitions()
    bus.open_here()
    people = [random_pseudonym() for _ in range(12)]
    for person in people:
        at_risk_with_an_alert_and_a_request(bus, person, "55")
    whole = gauges()
    bus.close_here(range(3, 6))  # a second instance took partitions 3 to 5
    first = gauges()
    bus.close_here(range(0, 3))
    bus.open_here(range(3, 6))
    second = gauges()
    assert {name: first[name] + second[name] for name in whole} == whole
    held_first = sum(1 for person in people if partition_of("person_timeline", person) < 3)
    assert first["timelines"] == held_first


def test_a_problem_whose_window_ends_leaves_the_gauge_when_its_timer_drops_it():
    bus, person = Partitions(), random_pseudonym()
    bus.open_here()
    days = 24 * 60
    bus.send(INCIDENT_RAISED, incident(person, "f-1", at(0)), at(0))
    bus.send(INCIDENT_RESOLVED, incident_resolved(person, "f-1", at(1)), at(1))
    bus.send(INCIDENT_RAISED, incident(person, "f-2", at(2 * days)), at(2 * days))
    bus.send(INCIDENT_RESOLVED, incident_resolved(person, "f-2", at(2 * days)), at(2 * days))
    missed = incident(person, "v-1", at(3 * days), "VISIT_MISSED")
    bus.send(INCIDENT_RAISED, missed, at(3 * days))
    assert gauges()["at_risk:55"] == 1
    [(key, _)] = bus.with_problems()
    bus.fire(key, at(0) + timedelta(days=7))
    assert gauges()["at_risk:55"] == 0
    bus.close_here()
    bus.open_here()
    assert gauges()["at_risk:55"] == 0
