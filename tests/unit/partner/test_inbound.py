"""What a partner publishes on its inbound topic carries the platform's envelope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.partner import PublishError
from emeuse.partner.inbound import Grants, inbound_record
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.runtime import envelope as env
from emeuse.runtime.envelope import timestamp
from tests.unit.partner.fakes import patient


def reading(pseudonym: str) -> ReadingRecorded:
    return ReadingRecorded(
        reading_id="gf-1",
        patient_pseudonym=pseudonym,
        loinc_code="2339-0",
        value=104,
        unit="mg/dL",
        measured_at=timestamp(datetime(2027, 3, 1, 8, tzinfo=UTC)),
        device_id="gf-meter-0007",
    )


def test_a_reading_goes_to_the_inbound_topic_keyed_by_the_patient_with_the_partner_as_source():
    person = patient()
    record = inbound_record("glucoflow", reading(person), territory="55", experiment_id="pilot")
    assert record.topic == "emeuse-partner.glucoflow.inbound"
    assert record.key == person.encode()
    parsed = env.from_headers(record.headers)
    assert parsed.source == "partner/glucoflow"
    assert parsed.event_type == "emeuse.chronic.v1.ReadingRecorded"
    assert parsed.subject_pseudonym == person
    assert parsed.territory == Territory.TERRITORY_MEUSE
    assert parsed.schema_version == "v1"
    assert ReadingRecorded.FromString(record.value) == reading(person)


def test_an_event_caused_by_a_handled_one_follows_its_territory_experiment_and_correlation():
    person = patient()
    cause = env.new_envelope(
        event_type="emeuse.chronic.v1.AlertRaised",
        source="emeuse/chronic",
        subject_pseudonym=person,
        territory=Territory.TERRITORY_HAUTE_MARNE,
        experiment_id="pilot-2027",
        schema_version="v1",
        occurred_at=datetime.now(UTC),
    )
    record = inbound_record("glucoflow", reading(person), cause=cause)
    assert record.envelope.territory == Territory.TERRITORY_HAUTE_MARNE
    assert record.envelope.experiment_id == "pilot-2027"
    assert record.envelope.correlation_id == cause.correlation_id
    assert record.envelope.causation_id == cause.event_id


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"reading_id": ""}, "lacks required field"),
        # The SDK's pseudonym check refuses a name there first, without echoing it.
        ({"patient_pseudonym": "Jean Dupont"}, "patient_pseudonym is not a platform pseudonym"),
        ({"patient_pseudonym": "psn-unknown"}, "not a platform pseudonym"),
        ({"device_id": "jean.dupont@example.fr"}, r"device_id holds a direct identifier \(e-mail"),
    ],
)
def test_an_event_the_platform_would_refuse_is_refused_before_it_is_sent(change, named):
    message = reading(patient())
    for name, value in change.items():
        setattr(message, name, value)
    with pytest.raises(PublishError, match=named):
        inbound_record("glucoflow", message, territory="55", experiment_id="pilot")


def test_a_territory_and_an_experiment_are_required_without_a_cause():
    with pytest.raises(PublishError, match="territory"):
        inbound_record("glucoflow", reading(patient()), experiment_id="pilot")
    with pytest.raises(PublishError, match="experiment"):
        inbound_record("glucoflow", reading(patient()), territory="55")


GRANTS = Grants(frozenset({"emeuse.chronic.v1.ReadingRecorded"}), ("glucoflow-pilot",))


def test_a_type_not_granted_is_refused_before_it_is_sent():
    alert = AlertRaised(
        alert_id="a-1",
        patient_pseudonym=patient(),
        rule="inr-high",
        raised_at=timestamp(datetime(2027, 3, 1, 8, tzinfo=UTC)),
    )
    with pytest.raises(PublishError, match="AlertRaised is not granted to partner 'glucoflow'"):
        inbound_record(
            "glucoflow", alert, territory="55", experiment_id="glucoflow-pilot", grants=GRANTS
        )


def test_an_experiment_not_the_partners_is_refused_before_it_is_sent():
    with pytest.raises(PublishError, match="experiment 'other' is not one of partner"):
        inbound_record(
            "glucoflow", reading(patient()), territory="55", experiment_id="other", grants=GRANTS
        )


def test_a_granted_type_in_the_partners_experiment_goes():
    record = inbound_record(
        "glucoflow",
        reading(patient()),
        territory="55",
        experiment_id="glucoflow-pilot",
        grants=GRANTS,
    )
    assert record.envelope.experiment_id == "glucoflow-pilot"
