"""The fan-out puts an event in the feed of each partner whose consent stands, inside the
transaction that handles it, and a consent change goes to the patient's consent book."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import Tx
from emeuse.partners import feed_topic
from emeuse.partners.v1.partners_pb2 import ConsentChanged, EventShared, PartnerRegistered
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import CONSENT_CHANGED, EVENT_SHARED, READING_RECORDED, dead_letter_topic
from emeuse.runtime import envelope as env
from emeuse.runtime.events import Event
from emeuse.runtime.pseudonym import random_pseudonym
from services.gateway.directory import PartnerDirectory
from services.gateway.domain.consent import ConsentBook
from services.gateway.processing import CONSENTS, apply_consent, share

PATIENT = random_pseudonym()
HAPPENED = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def partner(partner_id: str) -> PartnerRegistered:
    return PartnerRegistered(
        partner_id=partner_id,
        purposes=["remote-monitoring"],
        readable_event_types=[READING_RECORDED.type_name],
        active=True,
    )


def directory(*partners: PartnerRegistered) -> PartnerDirectory:
    loaded = PartnerDirectory()
    for p in partners:
        loaded.apply(p.partner_id.encode(), p.SerializeToString())
    loaded.ready.set()
    return loaded


def transaction(stored: dict[tuple[str, str], Any]) -> Tx:
    return Tx(
        0,
        Origin("gateway", "emeuse/gateway", "exp-test"),
        dead_letter_topic("gateway"),
        lambda table, key: stored.get((table, key)),
        lambda table, key: 0,
    )


def event(spec: Any, message: Any, key: str) -> Event:
    envelope = env.new_envelope(
        event_type=spec.type_name,
        source="emeuse/chronic",
        subject_pseudonym=PATIENT,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-test",
        schema_version="v1",
        occurred_at=HAPPENED,
    )
    return Event(envelope, message, key, spec.name, 0, 7)


def test_an_event_goes_only_to_the_feeds_of_partners_with_a_standing_consent() -> None:
    book = ConsentBook()
    book.record("glucoflow", "remote-monitoring", HAPPENED - timedelta(days=1), True)
    tx = transaction({(CONSENTS, PATIENT): book.to_json()})
    reading = ReadingRecorded(reading_id="r-1", patient_pseudonym=PATIENT, loinc_code="2339-0")
    partners = directory(partner("glucoflow"), partner("othercare"))
    asyncio.run(share(event(READING_RECORDED, reading, PATIENT), tx, directory=partners))
    out, _shared = tx.outputs
    assert out.topic == feed_topic("glucoflow")
    assert out.key == PATIENT.encode()
    assert ReadingRecorded.FromString(out.value) == reading
    assert dict(out.headers)[env.H_SUBJECT] == PATIENT.encode()
    assert not tx.writes


def test_a_consent_change_is_recorded_in_the_patients_book() -> None:
    tx = transaction({})
    change = ConsentChanged(
        patient_pseudonym=PATIENT,
        partner_id="glucoflow",
        purpose="remote-monitoring",
        granted=True,
        changed_at=env.timestamp(HAPPENED),
    )
    key = CONSENT_CHANGED.record_key(change) or PATIENT
    asyncio.run(apply_consent(event(CONSENT_CHANGED, change, key), tx))
    book = ConsentBook.from_json(tx.get(CONSENTS, PATIENT))
    assert book.stands("glucoflow", "remote-monitoring")
    assert not tx.outputs


def test_a_partner_that_asked_not_to_get_its_own_events_back_does_not() -> None:
    book = ConsentBook()
    for partner_id in ("glucoflow", "othercare"):
        book.record(partner_id, "remote-monitoring", HAPPENED - timedelta(days=1), True)
    tx = transaction({(CONSENTS, PATIENT): book.to_json()})
    reading = ReadingRecorded(reading_id="r-2", patient_pseudonym=PATIENT, loinc_code="2339-0")
    published = event(READING_RECORDED, reading, PATIENT)
    published.envelope.source = "partner/glucoflow"  # glucoflow's meter sent it
    publisher = partner("glucoflow")
    publisher.own_events_withheld = True
    asyncio.run(share(published, tx, directory=directory(publisher, partner("othercare"))))
    # The other consenting partner gets it; the publisher, who opted out, does not.
    assert [out.topic for out in tx.outputs] == [feed_topic("othercare"), EVENT_SHARED.name]


def test_a_partner_gets_its_own_events_back_unless_it_asked_otherwise() -> None:
    book = ConsentBook()
    book.record("glucoflow", "remote-monitoring", HAPPENED - timedelta(days=1), True)
    tx = transaction({(CONSENTS, PATIENT): book.to_json()})
    reading = ReadingRecorded(reading_id="r-3", patient_pseudonym=PATIENT, loinc_code="2339-0")
    published = event(READING_RECORDED, reading, PATIENT)
    published.envelope.source = "partner/glucoflow"
    asyncio.run(share(published, tx, directory=directory(partner("glucoflow"))))
    assert [out.topic for out in tx.outputs] == [feed_topic("glucoflow"), EVENT_SHARED.name]


def test_the_feeds_an_event_went_to_are_recorded_on_the_bus_in_its_cell() -> None:
    book = ConsentBook()
    for partner_id in ("glucoflow", "othercare"):
        book.record(partner_id, "remote-monitoring", HAPPENED - timedelta(days=1), True)
    tx = transaction({(CONSENTS, PATIENT): book.to_json()})
    reading = ReadingRecorded(reading_id="r-4", patient_pseudonym=PATIENT, loinc_code="2339-0")
    shared_event = event(READING_RECORDED, reading, PATIENT)
    readers = directory(partner("glucoflow"), partner("othercare"), partner("nobody"))
    asyncio.run(share(shared_event, tx, directory=readers))
    record = tx.outputs[-1]
    assert record.topic == EVENT_SHARED.name
    assert record.key == PATIENT.encode()
    shared = EventShared.FromString(record.value)
    # Once, naming every partner given it and no partner withheld from.
    assert list(shared.partner_ids) == ["glucoflow", "othercare"]
    assert (shared.event_id, shared.event_type) == (
        shared_event.envelope.event_id,
        READING_RECORDED.type_name,
    )
    envelope = env.from_headers(record.headers)
    # The shared event's experiment, territory and time: it counts in the same cell.
    assert envelope.experiment_id == "exp-test"
    assert envelope.territory == Territory.TERRITORY_MEUSE
    assert envelope.occurred_at.ToDatetime(tzinfo=UTC) == HAPPENED
    assert envelope.causation_id == shared_event.envelope.event_id


def test_an_event_no_feed_got_is_not_recorded_as_shared() -> None:
    tx = transaction({})
    reading = ReadingRecorded(reading_id="r-5", patient_pseudonym=PATIENT, loinc_code="2339-0")
    asyncio.run(
        share(
            event(READING_RECORDED, reading, PATIENT), tx, directory=directory(partner("glucoflow"))
        )
    )
    assert not tx.outputs
