from datetime import UTC, datetime

import pytest

from emeuse.place.v1.territory_pb2 import Territory
from emeuse.runtime import envelope as env
from emeuse.runtime.pseudonym import derive_pseudonym, random_pseudonym

PATIENT = random_pseudonym()
MEASURED = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)


def an_envelope(**overrides):
    fields = dict(
        event_type="emeuse.chronic.v1.ReadingRecorded",
        source="partner/glucomind",
        subject_pseudonym=PATIENT,
        territory=Territory.TERRITORY_HAUTE_MARNE,
        experiment_id="exp-glycemie-52",
        schema_version="v1",
        occurred_at=MEASURED,
    )
    return env.new_envelope(**(fields | overrides))


def test_headers_follow_the_cloudevents_kafka_binary_mode():
    headers = dict(env.to_headers(an_envelope()))
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"emeuse.chronic.v1.ReadingRecorded"
    assert headers["ce_source"] == b"partner/glucomind"
    assert headers["ce_time"] == b"2026-11-28T07:30:00Z"
    assert headers["ce_subject"] == PATIENT.encode()
    assert headers["ce_territory"] == b"52"
    assert headers["ce_experiment"] == b"exp-glycemie-52"
    assert headers["ce_schemaversion"] == b"v1"
    assert headers["content-type"] == b"application/protobuf"


def test_an_envelope_survives_the_round_trip_through_headers():
    sent = an_envelope()
    received = env.from_headers(env.to_headers(sent))
    assert received == sent


def test_a_first_event_correlates_with_itself_and_a_caused_event_with_its_cause():
    first = an_envelope()
    assert first.correlation_id == first.event_id
    assert first.causation_id == ""
    caused = an_envelope(event_type="emeuse.chronic.v1.AlertRaised", cause=first)
    assert caused.correlation_id == first.correlation_id
    assert caused.causation_id == first.event_id


def test_headers_given_as_a_mapping_parse_like_a_list_of_pairs():
    headers = env.to_headers(an_envelope())
    assert env.from_headers(dict(headers)) == env.from_headers(headers)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("ce_id", "ce_id"),
        ("ce_type", "ce_type"),
        ("ce_territory", "ce_territory"),
        ("ce_experiment", "ce_experiment"),
    ],
)
def test_a_missing_header_is_named_in_the_error(drop, message):
    headers = [(k, v) for k, v in env.to_headers(an_envelope()) if k != drop]
    with pytest.raises(env.EnvelopeError, match=message):
        env.from_headers(headers)


def test_a_territory_outside_the_programme_is_refused():
    headers = [(k, b"75" if k == "ce_territory" else v) for k, v in env.to_headers(an_envelope())]
    with pytest.raises(env.EnvelopeError, match="52, 54 or 55"):
        env.from_headers(headers)


@pytest.mark.parametrize(
    "identity", ["1 84 12 75 123 456 78", "184127512345678", "Jeanne Dupont", "0612345678"]
)
def test_an_identity_where_a_pseudonym_belongs_is_refused(identity):
    with pytest.raises(env.EnvelopeError, match="pseudonym"):
        an_envelope(subject_pseudonym=identity)


def test_a_time_without_zone_is_refused():
    headers = [
        (k, b"2026-11-28T07:30:00" if k == "ce_time" else v)
        for k, v in env.to_headers(an_envelope())
    ]
    with pytest.raises(env.EnvelopeError, match="ce_time"):
        env.from_headers(headers)


def test_non_protobuf_content_is_refused():
    headers = [
        (k, b"application/json" if k == "content-type" else v)
        for k, v in env.to_headers(an_envelope())
    ]
    with pytest.raises(env.EnvelopeError, match="content-type"):
        env.from_headers(headers)


def test_a_pseudonym_is_stable_for_one_key_and_differs_across_keys():
    key_a, key_b = b"a" * 32, b"b" * 32
    ins = "184127512345678"
    assert derive_pseudonym(ins, key_a) == derive_pseudonym(ins, key_a)
    assert derive_pseudonym(ins, key_a) != derive_pseudonym(ins, key_b)
    assert ins not in derive_pseudonym(ins, key_a)


def test_a_short_pseudonymisation_key_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        derive_pseudonym("184127512345678", b"short")


def test_a_time_out_of_range_is_refused_not_crashed_on():
    headers = [
        (k, b"0001-01-01T00:00:00+01:00" if k == "ce_time" else v)
        for k, v in env.to_headers(an_envelope())
    ]
    with pytest.raises(env.EnvelopeError, match="ce_time is out of range"):
        env.from_headers(headers)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("experiment_id", "Jean Dupont", "ce_experiment"),
        ("source", "Dr Martin's tablet", "ce_source"),
        ("source", "partner/", "ce_source"),
    ],
)
def test_free_text_where_an_id_belongs_is_refused(field, value, named):
    with pytest.raises(env.EnvelopeError, match=named):
        an_envelope(**{field: value})
