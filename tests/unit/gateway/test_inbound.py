"""What a partner publishes is let through only as granted, well formed and stamped."""

from datetime import UTC, datetime, timedelta

import pytest

from emeuse.access.v1.access_events_pb2 import PractitionerRegistered
from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, ReadingRecorded
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause
from emeuse.registry import CARE_PLAN_UPDATED, PRACTITIONER_REGISTERED, READING_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import InvalidEventError, UndecodableError
from emeuse.runtime.events import read_failure
from emeuse.runtime.id_rules import IdentifyingContentError
from emeuse.runtime.pseudonym import random_pseudonym
from services.gateway.domain.consent import ConsentBook
from services.gateway.inbound import Admitted, admit, consented, partner_of_inbound

PATIENT = random_pseudonym()
NOW = datetime(2026, 11, 2, 8, 1, tzinfo=UTC)
PARTNER = PartnerRegistered(
    partner_id="glucoflow",
    purposes=["remote-monitoring"],
    publishable_event_types=[READING_RECORDED.type_name],
    experiments=["exp-gluco"],
    active=True,
)


def reading() -> ReadingRecorded:
    message = ReadingRecorded(
        reading_id="r-1", patient_pseudonym=PATIENT, loinc_code="2339-0", value=95, unit="mg/dL"
    )
    message.measured_at.FromDatetime(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    return message


def envelope(
    event_type=READING_RECORDED.type_name, source="partner/someone-else", experiment="exp-gluco"
):
    return env.new_envelope(
        event_type=event_type,
        source=source,
        subject_pseudonym=PATIENT,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id=experiment,
        schema_version="v1",
        occurred_at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
    )


def test_a_granted_reading_goes_to_the_platform_topic_stamped_with_the_partner():
    admitted = admit("glucoflow", PARTNER, envelope(), reading().SerializeToString(), PATIENT, NOW)
    assert admitted.spec is READING_RECORDED
    assert admitted.message == reading()
    assert admitted.envelope.source == "partner/glucoflow"  # whatever the partner wrote


@pytest.mark.parametrize(
    ("partner", "kwargs", "value", "key", "error", "reason"),
    [
        (None, {}, None, PATIENT, InvalidEventError, "not registered"),
        (
            PARTNER,
            {"event_type": "emeuse.chronic.v1.AlertRaised"},
            None,
            PATIENT,
            InvalidEventError,
            "not granted",
        ),
        (PARTNER, {}, b"\xff not protobuf", PATIENT, UndecodableError, "not a"),
        (PARTNER, {"experiment": "exp-other"}, None, PATIENT, InvalidEventError, "experiment"),
        (PARTNER, {}, None, random_pseudonym(), InvalidEventError, "record key"),
    ],
)
def test_what_the_partner_may_not_send_is_refused_with_the_reason(
    partner, kwargs, value, key, error, reason
):
    raw = value if value is not None else reading().SerializeToString()
    with pytest.raises(error, match=reason):
        admit("glucoflow", partner, envelope(**kwargs), raw, key, NOW)


def test_a_partner_without_experiment_or_dating_ahead_publishes_nothing():
    raw = reading().SerializeToString()
    bare = PartnerRegistered()
    bare.CopyFrom(PARTNER)
    del bare.experiments[:]
    with pytest.raises(InvalidEventError, match="experiment"):
        admit("glucoflow", bare, envelope(), raw, PATIENT, NOW)
    with pytest.raises(InvalidEventError, match="future"):
        admit("glucoflow", PARTNER, envelope(), raw, PATIENT, NOW - timedelta(hours=1))


def test_a_care_plan_is_refused_even_when_the_registry_grants_it_to_the_partner():
    # A registration written by hand, or granted before care plans were the service's own.
    granted = PartnerRegistered()
    granted.CopyFrom(PARTNER)
    granted.publishable_event_types.append(CARE_PLAN_UPDATED.type_name)
    plan = CarePlanUpdated(patient_pseudonym=PATIENT, care_plan_id="plan-1")
    with pytest.raises(InvalidEventError) as refused:
        admit(
            "glucoflow",
            granted,
            envelope(event_type=CARE_PLAN_UPDATED.type_name),
            plan.SerializeToString(),
            PATIENT,
            NOW,
        )
    assert str(refused.value) == (
        "emeuse.chronic.care-plan-updated.v1 is written by the chronic service only (a care "
        "plan sets a patient's clinical thresholds and care team); no partner may publish it, "
        "whatever its grants say"
    )
    cause, _ = read_failure(refused.value)
    assert cause == DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT


def test_the_partner_id_comes_from_its_inbound_topic():
    assert partner_of_inbound("emeuse-partner.glucoflow.inbound") == "glucoflow"


@pytest.mark.parametrize(
    ("field", "value", "key", "named"),
    [
        ("device_id", "jean.dupont@example.fr", PATIENT, "device_id holds a direct identifier"),
        ("reading_id", "185057800608491", PATIENT, "reading_id holds a direct identifier"),
        ("reading_id", "r-2", "06 12 34 56 78", "record key holds a direct identifier"),
    ],
)
def test_a_partner_event_naming_a_person_is_refused_to_be_dead_lettered_withheld(
    field, value, key, named
):
    message = reading()
    setattr(message, field, value)
    with pytest.raises(IdentifyingContentError, match=named) as refused:
        admit("glucoflow", PARTNER, envelope(), message.SerializeToString(), key, NOW)
    assert read_failure(refused.value)[0] == DeadLetterCause.DEAD_LETTER_CAUSE_IDENTIFYING_CONTENT
    assert value not in str(refused.value) and key not in str(refused.value)


def consents_of(patient: str, granted_at: datetime) -> dict[str, ConsentBook]:
    book = ConsentBook()
    book.record("glucoflow", "remote-monitoring", granted_at, True)
    return {patient: book}


def test_a_reading_of_a_patient_consenting_to_the_partner_is_admitted():
    admitted = admit("glucoflow", PARTNER, envelope(), reading().SerializeToString(), PATIENT, NOW)
    books = consents_of(PATIENT, NOW - timedelta(days=1))
    consented(PARTNER, admitted, lambda p: books.get(p, ConsentBook()))


def test_a_reading_of_a_patient_without_consent_to_the_partner_is_refused_with_the_reason():
    admitted = admit("glucoflow", PARTNER, envelope(), reading().SerializeToString(), PATIENT, NOW)
    books = consents_of(random_pseudonym(), NOW - timedelta(days=1))  # someone else consents
    with pytest.raises(InvalidEventError) as refused:
        consented(PARTNER, admitted, lambda p: books.get(p, ConsentBook()))
    assert str(refused.value) == "no consent: the patient has not consented to partner 'glucoflow'"
    # A cause of its own: the partner can tell "no consent" from a bad event.
    assert read_failure(refused.value)[0] == DeadLetterCause.DEAD_LETTER_CAUSE_NO_CONSENT
    assert PATIENT not in str(refused.value)


def test_consent_is_judged_at_when_the_event_happened():
    admitted = admit("glucoflow", PARTNER, envelope(), reading().SerializeToString(), PATIENT, NOW)
    # Granted after the reading was taken (8:00), without covering earlier data.
    books = consents_of(PATIENT, datetime(2026, 11, 2, 8, 0, 30, tzinfo=UTC))
    with pytest.raises(InvalidEventError, match="does not cover when the event happened"):
        consented(PARTNER, admitted, lambda p: books.get(p, ConsentBook()))


def test_an_event_about_no_person_needs_no_consent():
    practitioner = PractitionerRegistered(practitioner_id="rpps-1", territory="55")
    about_nobody = Admitted(PRACTITIONER_REGISTERED, practitioner, envelope())

    def no_book(patient: str) -> ConsentBook:
        raise AssertionError(f"no consent should be looked up, asked for {patient!r}")

    consented(PARTNER, about_nobody, no_book)
