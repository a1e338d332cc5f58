"""The fan-out puts an event in the feed of each partner whose consent stands, inside the
transaction that handles it, and a consent change goes to the patient's consent book."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.home.v1.home_events_pb2 import DoorState, SensorEventReported, SensorKind
from emeuse.kernel.outputs import Origin
from emeuse.kernel.tx import Tx
from emeuse.partners import feed_topic
from emeuse.partners.v1.partners_pb2 import ConsentChanged, EventShared, PartnerRegistered
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import (
    CONSENT_CHANGED,
    EVENT_SHARED,
    READING_RECORDED,
    SENSOR_EVENT_REPORTED,
    dead_letter_topic,
)
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


def glucose(reading_id: str, value: float = 110, unit: str = "mg/dL") -> ReadingRecorded:
    return ReadingRecorded(
        reading_id=reading_id,
        patient_pseudonym=PATIENT,
        loinc_code="2339-0",
        value=value,
        unit=unit,
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
    reading = glucose("r-1")
    partners = directory(partner("glucoflow"), partner("othercare"))
    asyncio.run(
        share(
            event(READING_RECORDED, reading, PATIENT), tx, directory=partners, spec=READING_RECORDED
        )
    )
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
    reading = glucose("r-2")
    published = event(READING_RECORDED, reading, PATIENT)
    published.envelope.source = "partner/glucoflow"  # glucoflow's meter sent it
    publisher = partner("glucoflow")
    publisher.own_events_withheld = True
    asyncio.run(
        share(
            published,
            tx,
            directory=directory(publisher, partner("othercare")),
            spec=READING_RECORDED,
        )
    )
    # The other consenting partner gets it; the publisher, who opted out, does not.
    assert [out.topic for out in tx.outputs] == [feed_topic("othercare"), EVENT_SHARED.name]


def test_a_partner_gets_its_own_events_back_unless_it_asked_otherwise() -> None:
    book = ConsentBook()
    book.record("glucoflow", "remote-monitoring", HAPPENED - timedelta(days=1), True)
    tx = transaction({(CONSENTS, PATIENT): book.to_json()})
    reading = glucose("r-3")
    published = event(READING_RECORDED, reading, PATIENT)
    published.envelope.source = "partner/glucoflow"
    asyncio.run(
        share(published, tx, directory=directory(partner("glucoflow")), spec=READING_RECORDED)
    )
    assert [out.topic for out in tx.outputs] == [feed_topic("glucoflow"), EVENT_SHARED.name]


def test_the_feeds_an_event_went_to_are_recorded_on_the_bus_in_its_cell() -> None:
    book = ConsentBook()
    for partner_id in ("glucoflow", "othercare"):
        book.record(partner_id, "remote-monitoring", HAPPENED - timedelta(days=1), True)
    tx = transaction({(CONSENTS, PATIENT): book.to_json()})
    reading = glucose("r-4")
    shared_event = event(READING_RECORDED, reading, PATIENT)
    readers = directory(partner("glucoflow"), partner("othercare"), partner("nobody"))
    asyncio.run(share(shared_event, tx, directory=readers, spec=READING_RECORDED))
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
    reading = glucose("r-5")
    asyncio.run(
        share(
            event(READING_RECORDED, reading, PATIENT),
            tx,
            directory=directory(partner("glucoflow")),
            spec=READING_RECORDED,
        )
    )
    assert not tx.outputs


def consenting_glucoflow() -> Tx:
    book = ConsentBook()
    book.record("glucoflow", "remote-monitoring", HAPPENED - timedelta(days=1), True)
    return transaction({(CONSENTS, PATIENT): book.to_json()})


def withheld_as_invalid(event_type: str, rule: str) -> float:
    counted = REGISTRY.get_sample_value(
        "emeuse_gateway_events_invalid_total", {"type": event_type, "rule": rule}
    )
    return counted or 0.0


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "rule"),
    [
        ("34714-6", 40, "{INR}", "chronic:range"),
        ("34714-6", 2.5, "mmol/L", "chronic:unit"),
        ("2339-0", 110, "", "chronic:unit"),
        ("1234-5", 1, "kg", "chronic:measure"),
    ],
)
def test_a_reading_chronic_would_refuse_goes_to_no_feed_and_is_counted_by_rule(
    loinc, value, unit, rule
) -> None:
    tx = consenting_glucoflow()
    reading = ReadingRecorded(
        reading_id="r-6", patient_pseudonym=PATIENT, loinc_code=loinc, value=value, unit=unit
    )
    before = withheld_as_invalid(READING_RECORDED.type_name, rule)
    asyncio.run(
        share(
            event(READING_RECORDED, reading, PATIENT),
            tx,
            directory=directory(partner("glucoflow")),
            spec=READING_RECORDED,
        )
    )
    # No feed, no EventShared, and no dead letter: chronic sets it aside itself.
    assert not tx.outputs
    for apply in tx.committed():
        apply()
    assert withheld_as_invalid(READING_RECORDED.type_name, rule) == before + 1


def test_a_door_event_without_its_state_goes_to_no_feed_and_a_complete_one_does() -> None:
    reader = partner("glucoflow")
    reader.readable_event_types.append(SENSOR_EVENT_REPORTED.type_name)

    def door(state: DoorState.ValueType) -> Event:
        report = SensorEventReported(
            sensor_event_id="s-1",
            resident_pseudonym=PATIENT,
            device_id="door-01",
            kind=SensorKind.SENSOR_KIND_DOOR,
            door_state=state,
        )
        return event(SENSOR_EVENT_REPORTED, report, PATIENT)

    tx = consenting_glucoflow()
    before = withheld_as_invalid(SENSOR_EVENT_REPORTED.type_name, "home:door-state")
    asyncio.run(
        share(
            door(DoorState.DOOR_STATE_UNSPECIFIED),
            tx,
            directory=directory(reader),
            spec=SENSOR_EVENT_REPORTED,
        )
    )
    assert not tx.outputs
    for apply in tx.committed():
        apply()
    assert withheld_as_invalid(SENSOR_EVENT_REPORTED.type_name, "home:door-state") == before + 1

    tx = consenting_glucoflow()
    asyncio.run(
        share(
            door(DoorState.DOOR_STATE_OPENED),
            tx,
            directory=directory(reader),
            spec=SENSOR_EVENT_REPORTED,
        )
    )
    assert [out.topic for out in tx.outputs] == [feed_topic("glucoflow"), EVENT_SHARED.name]
