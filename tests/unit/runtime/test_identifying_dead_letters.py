"""A Kafka input holding a direct identifier is refused and dead-lettered without it."""

import hashlib
from datetime import UTC, datetime

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.kernel.outputs import Origin, SetAside, dead_letter_record
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import READING_RECORDED, dead_letter_topic
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import InvalidEventError, check_event
from emeuse.runtime.events import read_failure
from emeuse.runtime.pseudonym import random_pseudonym

PATIENT = random_pseudonym()
ORIGIN = Origin("chronic", "emeuse/chronic", "exp-1")
IDENTIFYING = DeadLetterCause.DEAD_LETTER_CAUSE_IDENTIFYING_CONTENT


def a_reading(**overrides):
    reading = ReadingRecorded(
        reading_id="r-1", patient_pseudonym=PATIENT, loinc_code="2339-0", value=5, unit="mmol/L"
    )
    reading.measured_at.FromDatetime(datetime(2026, 11, 28, 7, tzinfo=UTC))
    for name, value in overrides.items():
        setattr(reading, name, value)
    return reading


def headers_of(subject):
    envelope = env.new_envelope(
        event_type=READING_RECORDED.type_name,
        source="emeuse/cli",
        subject_pseudonym=PATIENT,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-1",
        schema_version="v1",
        occurred_at=datetime.now(UTC),
    )
    return [
        (name, subject.encode() if name == env.H_SUBJECT else value)
        for name, value in env.to_headers(envelope)
    ]


def refusal(reading, key, headers):
    """The cause and reason the kernel gives a record, as it reads it."""
    try:
        envelope = env.from_headers(env.header_map(headers))
        check_event(READING_RECORDED, envelope, reading, key)
    except Exception as exc:
        return read_failure(exc)
    raise AssertionError("the record was accepted")


@pytest.mark.parametrize(
    ("reading", "key", "subject", "secret", "named"),
    [
        (
            a_reading(reading_id="185057800608491"),
            PATIENT,
            PATIENT,
            "185057800608491",
            "reading_id",
        ),
        (a_reading(device_id="jean@example.fr"), PATIENT, PATIENT, "jean@example.fr", "device_id"),
        (
            a_reading(patient_pseudonym="Jean Dupont"),
            "Jean Dupont",
            "Jean Dupont",
            "Jean Dupont",
            "ce_subject",
        ),
    ],
)
def test_a_record_holding_an_identifier_is_dead_lettered_with_only_its_hash(
    reading, key, subject, secret, named
):
    value = reading.SerializeToString()
    headers = headers_of(subject)
    cause, reason = refusal(reading, key, headers)
    assert cause == IDENTIFYING
    assert reason.startswith(f"{named} holds a direct identifier")
    aside = SetAside(
        READING_RECORDED.name, 3, 41, key.encode(), value, tuple(headers), cause, reason
    )
    record = dead_letter_record(ORIGIN, dead_letter_topic("chronic"), aside)
    letter = MessageDeadLettered.FromString(record.value)
    assert letter.original_withheld
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        READING_RECORDED.name,
        3,
        41,
    )
    assert letter.original_value_sha256 == hashlib.sha256(value).digest()
    assert letter.original_value_size == len(value)
    assert not (letter.original_key or letter.original_value or letter.original_headers)
    everything = record.value + (record.key or b"") + b"".join(v for _, v in record.headers)
    assert secret.encode() not in everything


def test_a_record_refused_for_another_reason_keeps_its_original_for_replay():
    reading = a_reading()
    reading.ClearField("measured_at")
    with pytest.raises(InvalidEventError) as refused:
        check_event(
            READING_RECORDED,
            env.from_headers(env.header_map(headers_of(PATIENT))),
            reading,
            PATIENT,
        )
    cause, reason = read_failure(refused.value)
    assert cause == DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT
    aside = SetAside(
        READING_RECORDED.name,
        0,
        1,
        PATIENT.encode(),
        reading.SerializeToString(),
        (),
        cause,
        reason,
    )
    letter = MessageDeadLettered.FromString(
        dead_letter_record(ORIGIN, dead_letter_topic("chronic"), aside).value
    )
    assert not letter.original_withheld
    assert letter.original_value == reading.SerializeToString()


def test_a_record_refused_for_another_reason_that_names_someone_is_withheld_too():
    reading = a_reading(device_id="jean.dupont@example.fr")
    reading.ClearField("measured_at")  # refused first for the missing field
    with pytest.raises(InvalidEventError) as refused:
        check_event(
            READING_RECORDED,
            env.from_headers(env.header_map(headers_of(PATIENT))),
            reading,
            PATIENT,
        )
    cause, reason = read_failure(refused.value)
    assert cause == DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT
    value = reading.SerializeToString()
    aside = SetAside(READING_RECORDED.name, 0, 1, PATIENT.encode(), value, (), cause, reason)
    letter = MessageDeadLettered.FromString(
        dead_letter_record(ORIGIN, dead_letter_topic("chronic"), aside).value
    )
    assert letter.cause == cause
    assert letter.original_withheld
    assert letter.reason.endswith(
        "original withheld: it holds a direct identifier (e-mail address)"
    )
    assert letter.original_value_sha256 == hashlib.sha256(value).digest()
    assert b"jean.dupont" not in letter.SerializeToString()
