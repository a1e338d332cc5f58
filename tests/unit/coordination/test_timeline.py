"""A person's timeline: time order whatever the arrival order, bounded per axis, paged."""

from __future__ import annotations

import pytest

from emeuse.coordination.v1.coordination_events_pb2 import (
    Axis,
    EntryKind,
    TimelineEntry,
    TimelineEntryRecorded,
)
from emeuse.prevention.v1.prevention_events_pb2 import MessageScheduled
from emeuse.registry import (
    ALERT_RAISED,
    CONSULTATION_REQUESTED,
    DELIVERY_RECEIPT_REPORTED,
    INCIDENT_RAISED,
    MESSAGE_SCHEDULED,
    TIMELINE_ENTRY_RECORDED,
)
from emeuse.runtime.pseudonym import random_pseudonym
from services.coordination.domain import timeline
from services.coordination.entries import shown
from tests.unit.coordination.partitions import Partitions
from tests.unit.coordination.stories import (
    alert_raised,
    at,
    incident,
    receipt,
    requested,
    stamp,
)


def kinds(entries):
    return [(e["kind"], e["subject"]) for e in entries]


def test_alert_consultation_and_incident_come_back_in_the_order_they_happened():
    bus, person = Partitions(), random_pseudonym()
    # The incident is read first and the consultation last: the timeline is by time.
    bus.send(INCIDENT_RAISED, incident(person, "inc-1", at(90)), at(90))
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    bus.send(CONSULTATION_REQUESTED, requested(person, "req-1", at(5), cause="al-1"), at(5))
    entries = timeline.entries(bus.timeline(person))
    assert kinds(entries) == [
        ("alert_raised", "al-1"),
        ("consultation_requested", "req-1"),
        ("incident_raised", "inc-1"),
    ]
    consultation = entries[1]
    assert consultation["related"] == "al-1"
    assert (consultation["code"], consultation["detail"]) == ("same_day", "gp")
    assert entries[0]["code"] == "critical" and entries[0]["detail"] == "inr.critical_high"


def test_no_free_text_of_an_event_reaches_the_timeline():
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    bus.send(INCIDENT_RAISED, incident(person, "inc-1", at(1)), at(1))
    text = repr(bus.timeline(person))
    assert "above critical high" not in text and "kitchen" not in text


def test_an_access_event_is_kept_on_the_person_partition_never_the_agenda_one():
    bus, person = Partitions(), random_pseudonym()
    bus.send(CONSULTATION_REQUESTED, requested(person, "req-1", at(5)), at(5))
    agenda, rekeyed = bus.handled
    assert agenda.topic == CONSULTATION_REQUESTED.name and agenda.written == []
    assert rekeyed.topic == "emeuse.coordination.timeline-entry-recorded.v1"
    assert ("person_timeline", person) in rekeyed.written
    assert bus.timeline(person)["territory"] == "55"


def test_an_event_read_twice_is_one_entry():
    bus, person = Partitions(), random_pseudonym()
    message = alert_raised(person, "al-1", at(0))
    first = bus.send(ALERT_RAISED, message, at(0))
    bus.send(ALERT_RAISED, message, at(0), event_id=first)
    assert len(timeline.entries(bus.timeline(person))) == 1


def test_each_axis_keeps_its_last_entries_so_messages_never_push_out_alerts():
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    sent = timeline.MAX_PER_AXIS + 20
    for n in range(sent):
        bus.send(DELIVERY_RECEIPT_REPORTED, receipt(person, f"m-{n}", at(10 + n)), at(10 + n))
    entries = timeline.entries(bus.timeline(person))
    receipts = [e["subject"] for e in entries if e["axis"] == "prevention"]
    assert len(receipts) == timeline.MAX_PER_AXIS
    assert receipts[0] == "m-20" and receipts[-1] == f"m-{sent - 1}"
    assert entries[0]["subject"] == "al-1"


def test_an_entry_older_than_a_full_axis_is_left_out():
    kept = timeline.empty()
    for n in range(timeline.MAX_PER_AXIS):
        assert timeline.add(kept, entry(f"e-{n}", 100 + n))
    assert not timeline.add(kept, entry("late", 50))
    assert "late" not in [e["id"] for e in timeline.entries(kept)]


def entry(entry_id: str, at_ms: int, axis: str = "home") -> dict:
    return {
        "id": entry_id,
        "axis": axis,
        "kind": "visit_started",
        "at": at_ms,
        "subject": entry_id,
        "related": "",
        "code": "",
        "detail": "",
        "territory": "55",
    }


def test_pages_cover_every_entry_once_even_when_one_arrives_between_pages():
    kept = timeline.empty()
    for n in range(7):
        timeline.add(kept, entry(f"e-{n}", 1000 + n * 10, "home" if n % 2 else "chronic"))
    first, cursor = timeline.page(timeline.entries(kept), None, 3)
    # Arrives between two pages, earlier than the page already read: not shown twice.
    timeline.add(kept, entry("late", 1001))
    seen = [e["id"] for e in first]
    while cursor is not None:
        page, cursor = timeline.page(timeline.entries(kept), cursor, 3)
        seen += [e["id"] for e in page]
    assert seen == [f"e-{n}" for n in range(7)]


def test_the_last_page_has_no_next_cursor():
    kept = timeline.empty()
    for n in range(4):
        timeline.add(kept, entry(f"e-{n}", n))
    page, cursor = timeline.page(timeline.entries(kept), None, 4)
    assert len(page) == 4 and cursor is None


def test_an_access_event_naming_no_patient_fails_so_the_kernel_dead_letters_it():
    bus = Partitions()
    message = requested(random_pseudonym(), "req-1", at(0))
    message.patient_pseudonym = ""
    with pytest.raises(ValueError, match="names no patient_pseudonym"):
        bus.send(CONSULTATION_REQUESTED, message, at(0))
    assert bus.handled == []


def test_a_campaign_message_is_left_to_its_receipts_but_a_programme_step_is_shown():
    bus, person = Partitions(), random_pseudonym()
    for message_id, programme in (("m-campaign", ""), ("m-step", "pregnancy")):
        planned = MessageScheduled(
            message_id=message_id,
            person_pseudonym=person,
            programme=programme,
            step="week-12",
            template_id="t-1",
            due_at=stamp(at(60)),
        )
        bus.send(MESSAGE_SCHEDULED, planned, at(0))
    [step] = timeline.entries(bus.timeline(person))
    assert (step["kind"], step["subject"], step["code"], step["detail"]) == (
        "message_scheduled",
        "m-step",
        "pregnancy",
        "week-12",
    )


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda e: e.ClearField("entry_id"), "entry_id is empty"),
        (lambda e: setattr(e, "axis", Axis.AXIS_UNSPECIFIED), "not an axis"),
        (lambda e: setattr(e, "kind", 99), "not an entry kind"),
        (lambda e: e.ClearField("occurred_at"), "occurred_at is not set"),
        (lambda e: setattr(e, "code", "fell in the kitchen"), "code is not a short code"),
        (lambda e: setattr(e, "territory", "75"), "not a programme territory"),
        (lambda e: setattr(e, "partner_id", "Dr Martin"), "not a partner id"),
    ],
)
def test_an_entry_on_the_timeline_topic_no_axis_would_make_is_refused(spoil, reason):
    entry = TimelineEntry(
        entry_id="e-1",
        axis=Axis.AXIS_HOME,
        kind=EntryKind.ENTRY_KIND_INCIDENT_RAISED,
        subject_id="inc-1",
        code="fall",
        territory="55",
    )
    entry.occurred_at.CopyFrom(stamp(at(0)))
    bus, person = Partitions(), random_pseudonym()
    bus.send(
        TIMELINE_ENTRY_RECORDED, TimelineEntryRecorded(person_pseudonym=person, entry=entry), at(0)
    )
    assert [e["subject"] for e in timeline.entries(bus.timeline(person))] == ["inc-1"]
    spoil(entry)
    recorded = TimelineEntryRecorded(person_pseudonym=random_pseudonym(), entry=entry)
    with pytest.raises(ValueError, match=reason):
        Partitions().send(TIMELINE_ENTRY_RECORDED, recorded, at(0))


def test_a_partners_event_shows_in_the_timeline_with_the_partner_that_published_it():
    """A partner plugs into the timeline through the axes' topics: what the gateway admitted
    (under the person's consent to that partner) is an entry like the platform's own,
    marked with the partner, through the access re-keying too."""
    bus, person = Partitions(), random_pseudonym()
    bus.send(ALERT_RAISED, alert_raised(person, "al-1", at(0)), at(0))
    sms = receipt(person, "m-1", at(2))
    bus.send(DELIVERY_RECEIPT_REPORTED, sms, at(2), source="partner/sms-est")
    asked = requested(person, "req-1", at(5), cause="al-1")
    bus.send(CONSULTATION_REQUESTED, asked, at(5), source="partner/teleconsult-est")
    entries = timeline.entries(bus.timeline(person))
    assert [(e["kind"], e.get("partner", "")) for e in entries] == [
        ("alert_raised", ""),
        ("message_receipt", "sms-est"),
        ("consultation_requested", "teleconsult-est"),
    ]
    assert [shown(e).partner_id for e in entries] == ["", "sms-est", "teleconsult-est"]
