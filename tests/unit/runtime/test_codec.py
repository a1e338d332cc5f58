from datetime import UTC, datetime

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import ALERT_RAISED, READING_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import (
    InvalidEventError,
    UndecodableError,
    check_event,
    check_partition,
    decode,
    expected_partition,
)
from emeuse.runtime.pseudonym import random_pseudonym

PATIENT = random_pseudonym()


def a_reading(**overrides):
    reading = ReadingRecorded(
        reading_id="r-1",
        patient_pseudonym=PATIENT,
        loinc_code="2339-0",
        value=52,
        unit="mg/dL",
    )
    reading.measured_at.FromDatetime(datetime(2026, 11, 28, 7, tzinfo=UTC))
    for name, value in overrides.items():
        setattr(reading, name, value)
    return reading


def an_envelope(event_type=READING_RECORDED.type_name, subject=PATIENT):
    return env.new_envelope(
        event_type=event_type,
        source="emeuse/cli",
        subject_pseudonym=subject,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-1",
        schema_version="v1",
        occurred_at=datetime.now(UTC),
    )


def test_a_reading_decodes_to_the_same_message():
    reading = a_reading()
    assert decode(READING_RECORDED, reading.SerializeToString()) == reading


def test_garbage_bytes_are_undecodable_with_the_expected_type_named():
    with pytest.raises(UndecodableError, match=r"emeuse\.chronic\.v1\.ReadingRecorded"):
        decode(READING_RECORDED, b"\xff\xff\xffnot protobuf")


def test_a_tombstone_is_undecodable():
    with pytest.raises(UndecodableError, match="tombstone"):
        decode(READING_RECORDED, None)


def test_a_complete_reading_with_matching_key_and_subject_is_valid():
    check_event(READING_RECORDED, an_envelope(), a_reading(), PATIENT)


def test_a_missing_required_field_is_named():
    reading = a_reading()
    reading.ClearField("measured_at")
    with pytest.raises(InvalidEventError, match="measured_at"):
        check_event(READING_RECORDED, an_envelope(), reading, PATIENT)


def test_a_type_header_that_is_not_the_topic_type_is_refused():
    with pytest.raises(InvalidEventError, match="does not match topic type"):
        check_event(
            READING_RECORDED, an_envelope(event_type=ALERT_RAISED.type_name), a_reading(), PATIENT
        )


def test_a_record_keyed_by_another_patient_is_refused():
    with pytest.raises(InvalidEventError, match="record key"):
        check_event(READING_RECORDED, an_envelope(), a_reading(), random_pseudonym())


def test_a_subject_that_is_not_the_patient_is_refused():
    with pytest.raises(InvalidEventError, match="ce_subject"):
        check_event(READING_RECORDED, an_envelope(subject=random_pseudonym()), a_reading(), PATIENT)


def test_a_record_on_another_partition_than_the_default_partitioner_picks_is_refused():
    right = expected_partition(PATIENT.encode(), READING_RECORDED.partitions)
    check_partition(READING_RECORDED, PATIENT.encode(), right)
    with pytest.raises(InvalidEventError, match="murmur2"):
        check_partition(
            READING_RECORDED, PATIENT.encode(), (right + 1) % READING_RECORDED.partitions
        )


def test_a_consent_is_keyed_by_patient_partner_and_purpose_but_sits_with_the_patient():
    from emeuse.partners.v1.partners_pb2 import ConsentChanged
    from emeuse.registry import CONSENT_CHANGED

    consent = ConsentChanged(
        patient_pseudonym=PATIENT, partner_id="glucoflow", purpose="remote-monitoring"
    )
    key = CONSENT_CHANGED.record_key(consent)
    # Compacted per patient, partner and purpose: one patient's consents never erase another's.
    assert key == f"{PATIENT}|glucoflow|remote-monitoring"
    # On the patient's partition, like the patient's events, so a join sees both in order.
    patients = expected_partition(PATIENT.encode(), CONSENT_CHANGED.partitions)
    check_partition(CONSENT_CHANGED, key.encode(), patients, consent)
    with pytest.raises(InvalidEventError, match="murmur2"):
        check_partition(
            CONSENT_CHANGED, key.encode(), (patients + 1) % CONSENT_CHANGED.partitions, consent
        )
    envelope = env.new_envelope(
        event_type=CONSENT_CHANGED.type_name,
        source="emeuse/partners",
        subject_pseudonym=PATIENT,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-1",
        schema_version="v1",
        occurred_at=datetime.now(UTC),
    )
    consent.changed_at.GetCurrentTime()
    check_event(CONSENT_CHANGED, envelope, consent, key)
    with pytest.raises(InvalidEventError, match="record key"):
        check_event(CONSENT_CHANGED, envelope, consent, PATIENT)
