"""Open items are kept beside the bounded entries: dropping old entries never changes who
is at risk (domain only, then through the handlers)."""

from __future__ import annotations

import copy

from emeuse.chronic.v1 import chronic_events_pb2 as chronic
from emeuse.registry import (
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_RESOLVED,
    CONSULTATION_REQUESTED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from services.coordination.domain import open_items, problems, timeline
from services.coordination.grpc_api import people_at_risk
from tests.unit.coordination.partitions import Partitions
from tests.unit.coordination.stories import alert_raised, alert_resolved, at, requested, stamp

NOW = problems.ms(at(0))
MINUTE = 60_000


def entry(entry_id: str, kind: str, at_ms: int, subject: str, **fields: str) -> timeline.Entry:
    axis = "access" if kind in ("consultation_requested", "slot_booked") else "chronic"
    return {
        "id": entry_id,
        "axis": axis,
        "kind": kind,
        "at": at_ms,
        "subject": subject,
        "related": fields.get("related", ""),
        "code": fields.get("code", ""),
        "detail": "",
        "territory": "55",
    }


def open_at(kept: timeline.Timeline, minutes: float) -> list[problems.Problem]:
    return problems.open_problems(kept, at(minutes))


def listed(kept: timeline.Timeline, person: str, minutes: float) -> list[str]:
    """Who ListPeopleAtRisk shows of the territory, from the problems kept after a change."""
    found = open_at(kept, minutes)
    stored = [(f"55|{person}", [problems.to_dict(p) for p in found])] if found else []
    return [p.person_pseudonym for p in people_at_risk(stored, "55", at(minutes), None)]


def escalations(count: int, start_ms: int) -> list[timeline.Entry]:
    """Chronic entries about other alerts: enough to push the first one out of the bound."""
    return [
        entry(f"esc-{n}", "alert_escalated", start_ms + n * MINUTE, f"al-other-{n}")
        for n in range(count)
    ]


def test_an_alert_whose_raise_left_the_timeline_is_still_open_until_resolved():
    kept, person = timeline.empty(), random_pseudonym()
    raised = entry("e-raised", "alert_raised", NOW, "al-1", code="critical")
    open_items.record(kept, raised, NOW)
    asked = entry("e-asked", "consultation_requested", NOW + MINUTE, "req-1")
    open_items.record(kept, asked, NOW)
    for later in escalations(60, NOW + 2 * MINUTE):
        open_items.record(kept, later, NOW)
    assert "e-raised" not in [e["id"] for e in timeline.entries(kept)]
    assert [p.rule for p in open_at(kept, 90)] == ["critical_alert_open", "request_not_booked"]
    assert listed(kept, person, 90) == [person]
    assert [p.weight for p in open_at(kept, 90)] == [5, 3]
    resolved = entry("e-resolved", "alert_resolved", NOW + 70 * MINUTE, "al-1")
    added, changed = open_items.record(kept, resolved, NOW)
    assert added and changed
    assert [p.rule for p in open_at(kept, 90)] == ["request_not_booked"]
    assert listed(kept, person, 90) == []
    # Cleaned when closed: nothing of the alert is left in the open items.
    assert kept["open"]["alerts"] == {}


def test_a_copy_of_a_raise_read_after_its_alert_closed_does_not_open_it_again():
    kept = timeline.empty()
    open_items.record(kept, entry("e-raised", "alert_raised", NOW, "al-1", code="critical"), NOW)
    open_items.record(kept, entry("e-resolved", "alert_resolved", NOW + MINUTE, "al-1"), NOW)
    for later in escalations(60, NOW + 2 * MINUTE):
        open_items.record(kept, later, NOW)
    copy_of_raise = entry("e-raised", "alert_raised", NOW, "al-1", code="critical")
    assert open_items.record(kept, copy_of_raise, NOW) == (False, False)
    assert open_at(kept, 90) == []


def test_a_resolution_too_old_for_the_timeline_still_closes_its_alert():
    kept = timeline.empty()
    open_items.record(kept, entry("e-raised", "alert_raised", NOW, "al-1", code="warning"), NOW)
    for later in escalations(60, NOW + 10 * MINUTE):
        open_items.record(kept, later, NOW)
    late = entry("e-resolved", "alert_resolved", NOW + MINUTE, "al-1")
    assert open_items.record(kept, late, NOW) == (False, True)
    assert open_at(kept, 90) == []


def test_a_closing_event_read_before_its_opening_one_leaves_nothing_open():
    kept = timeline.empty()
    booked = entry("e-booked", "slot_booked", NOW + MINUTE, "bk-1", related="req-1")
    open_items.record(kept, booked, NOW)
    open_items.record(kept, entry("e-asked", "consultation_requested", NOW, "req-1"), NOW)
    open_items.record(kept, entry("e-resolved", "alert_resolved", NOW + MINUTE, "al-1"), NOW)
    open_items.record(kept, entry("e-raised", "alert_raised", NOW, "al-1", code="critical"), NOW)
    assert open_at(kept, 90) == []


def test_a_timeline_stored_before_open_items_were_kept_is_read_as_its_entries_say():
    kept = timeline.empty()
    open_items.record(kept, entry("e-raised", "alert_raised", NOW, "al-1", code="critical"), NOW)
    open_items.record(kept, entry("e-asked", "consultation_requested", NOW, "req-1"), NOW)
    older = copy.deepcopy(kept)
    del older["open"]
    assert [p.rule for p in open_at(older, 90)] == ["critical_alert_open", "request_not_booked"]
    # Its first new entry stores the open items rebuilt from the entries, then keeps them.
    resolved = entry("e-resolved", "alert_resolved", NOW + MINUTE, "al-1")
    assert open_items.record(older, resolved, NOW) == (True, True)
    assert (
        older["open"]
        == open_items.rebuilt(older, NOW)
        == {
            **open_items.empty(),
            "requests": {"req-1": {"at": NOW, "flagged": False}},
        }
    )


def test_through_the_handlers_an_old_open_alert_still_weighs_in_the_list():
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    bus.send(CONSULTATION_REQUESTED, requested(person, "req-1", at(1), "al-1"), at(1))
    for n in range(60):
        escalated = chronic.AlertEscalated(
            alert_id=f"al-other-{n}",
            patient_pseudonym=person,
            step=1,
            escalated_at=stamp(at(2 + n)),
        )
        bus.send(ALERT_ESCALATED, escalated, at(2 + n))
    chronic_entries = bus.timeline(person)["axes"]["chronic"]
    assert len(chronic_entries) == timeline.MAX_PER_AXIS
    assert "al-1" not in [e["subject"] for e in chronic_entries]
    [shown] = people_at_risk(bus.with_problems(), "55", at(90), None)
    assert shown.person_pseudonym == person and shown.urgency == 5 + 3
    bus.send(ALERT_RESOLVED, alert_resolved(person, "al-1", at(80)), at(80))
    assert people_at_risk(bus.with_problems(), "55", at(90), None) == []


def test_a_stored_timeline_without_open_items_is_rebuilt_by_its_next_event():
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    del bus.timeline(person)["open"]
    bus.send(CONSULTATION_REQUESTED, requested(person, "req-1", at(1), "al-1"), at(1))
    assert set(bus.timeline(person)["open"]["alerts"]) == {"al-1"}
    [shown] = people_at_risk(bus.with_problems(), "55", at(90), None)
    assert shown.person_pseudonym == person
