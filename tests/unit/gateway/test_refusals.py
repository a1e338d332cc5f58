"""A service's refusal of a partner's event goes back to that partner's dead letters, with
the service's reason and the event id the partner sent; nothing else of the service's."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.kernel.outputs import Origin, SetAside, dead_letter_record
from emeuse.kernel.tx import Tx
from emeuse.partners import dead_letter_topic as partner_dead_letters
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import READING_RECORDED, dead_letter_topic
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import check_event, check_partition, decode, expected_partition
from emeuse.runtime.events import Event
from emeuse.runtime.pseudonym import random_pseudonym
from services.gateway.directory import PartnerDirectory
from services.gateway.processing import processor
from services.gateway.refusals import report_refusal
from services.gateway.topics import refusal_topics

PATIENT = random_pseudonym()
NO_CARE_PLAN = "patient is not enrolled in remote monitoring: no care plan to place the reading in"


def directory(*partner_ids: str, active: bool = True) -> PartnerDirectory:
    loaded = PartnerDirectory()
    for partner_id in partner_ids:
        registration = PartnerRegistered(partner_id=partner_id, active=active)
        loaded.apply(partner_id.encode(), registration.SerializeToString())
    loaded.ready.set()
    return loaded


def refused_reading(source: str, cause: int, reason: str) -> tuple[Any, str]:
    """The record chronic's kernel writes on its dead letters for a reading it refused,
    and the id of the refused event."""
    reading = ReadingRecorded(reading_id="r-1", patient_pseudonym=PATIENT, loinc_code="2339-0")
    envelope = env.new_envelope(
        event_type=READING_RECORDED.type_name,
        source=source,
        subject_pseudonym=PATIENT,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="glucoflow-pilot",
        schema_version="v1",
        occurred_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    )
    aside = SetAside(
        topic=READING_RECORDED.name,
        partition=expected_partition(PATIENT.encode(), READING_RECORDED.partitions),
        offset=41,
        key=PATIENT.encode(),
        value=reading.SerializeToString(),
        headers=tuple(env.to_headers(envelope)),
        cause=cause,
        reason=reason,
    )
    chronic = Origin("chronic", "emeuse/chronic", "emeuse-platform")
    return dead_letter_record(chronic, dead_letter_topic("chronic"), aside), envelope.event_id


def as_gateway_reads_it(record: Any) -> Event:
    """The dead letter through the checks the kernel runs on every gateway input."""
    spec = dead_letter_topic("chronic")
    partition = expected_partition(record.key, spec.partitions)
    envelope = env.from_headers(record.headers)
    letter = decode(spec, record.value)
    check_event(spec, envelope, letter, record.key.decode())
    check_partition(spec, record.key, partition, letter)
    return Event(envelope, letter, record.key.decode(), spec.name, partition, 3)


def report(event: Event, partners: PartnerDirectory) -> Tx:
    tx = Tx(
        0,
        Origin("gateway", "emeuse/gateway", "exp-test"),
        dead_letter_topic("gateway"),
        lambda table, key: None,
        lambda table, key: 0,
    )
    asyncio.run(report_refusal(event, tx, directory=partners))
    return tx


def test_a_reading_chronic_refused_reaches_the_partner_who_sent_it_with_the_reason() -> None:
    record, event_id = refused_reading(
        "partner/glucoflow", DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT, NO_CARE_PLAN
    )
    tx = report(as_gateway_reads_it(record), directory("glucoflow", "othercare"))
    [out] = tx.outputs
    assert out.topic == partner_dead_letters("glucoflow")
    assert out.key == PATIENT.encode()
    told = MessageDeadLettered.FromString(out.value)
    assert told.reason == f"refused by chronic: {NO_CARE_PLAN}"
    assert told.consumer == "chronic"
    assert told.original_headers[env.H_ID] == event_id.encode()
    assert ReadingRecorded.FromString(told.original_value).reading_id == "r-1"


def test_a_services_own_failure_is_reported_without_its_text() -> None:
    record, _ = refused_reading(
        "partner/glucoflow",
        DeadLetterCause.DEAD_LETTER_CAUSE_HANDLER_FAILED,
        "handler failed: KeyError: 'care-team-member-7'",
    )
    [out] = report(as_gateway_reads_it(record), directory("glucoflow")).outputs
    told = MessageDeadLettered.FromString(out.value)
    assert "chronic could not process it" in told.reason
    assert "care-team-member-7" not in told.reason


def test_refusals_of_the_platforms_own_events_or_of_removed_partners_go_nowhere() -> None:
    platform, _ = refused_reading(
        "emeuse/chronic", DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT, NO_CARE_PLAN
    )
    assert not report(as_gateway_reads_it(platform), directory("glucoflow")).outputs
    removed, _ = refused_reading(
        "partner/glucoflow", DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT, NO_CARE_PLAN
    )
    assert not report(as_gateway_reads_it(removed), directory("glucoflow", active=False)).outputs


def test_the_gateway_reads_every_services_dead_letters_but_its_own() -> None:
    names = {spec.name for spec in refusal_topics()}
    assert dead_letter_topic("chronic").name in names
    assert dead_letter_topic("gateway").name not in names
    inputs = {spec.name for spec in processor(directory()).inputs}
    assert names <= inputs
