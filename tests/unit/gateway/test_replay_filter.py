"""A replay filters as the live feed does: an event its owning service's rules refuse is
not sent again to any partner, whatever the consent."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import READING_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.pseudonym import random_pseudonym
from services.gateway.domain.consent import ConsentBook
from services.gateway.replay import _share

PATIENT = random_pseudonym()
HAPPENED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
READER = PartnerRegistered(
    partner_id="glucoflow",
    purposes=["remote-monitoring"],
    readable_event_types=[READING_RECORDED.type_name],
    active=True,
)


def stored(value: float, unit: str) -> SimpleNamespace:
    """A reading as the replay reads it back from the topic."""
    reading = ReadingRecorded(
        reading_id="r-1", patient_pseudonym=PATIENT, loinc_code="34714-6", value=value, unit=unit
    )
    reading.measured_at.FromDatetime(HAPPENED)
    envelope = env.new_envelope(
        event_type=READING_RECORDED.type_name,
        source="emeuse/chronic",
        subject_pseudonym=PATIENT,
        territory=Territory.TERRITORY_MEUSE,
        experiment_id="exp-test",
        schema_version="v1",
        occurred_at=HAPPENED,
    )
    return SimpleNamespace(
        topic=READING_RECORDED.name,
        key=PATIENT.encode(),
        value=reading.SerializeToString(),
        headers=env.to_headers(envelope),
        partition=expected_partition(PATIENT.encode(), READING_RECORDED.partitions),
    )


def consenting(_patient: str) -> ConsentBook:
    book = ConsentBook()
    book.record("glucoflow", "remote-monitoring", HAPPENED - timedelta(days=1), True)
    return book


def test_a_possible_reading_is_replayed_under_consent_and_an_impossible_one_is_not():
    since = HAPPENED - timedelta(hours=1)
    assert _share(READER, stored(2.5, "{INR}"), since, consenting) is True
    assert _share(READER, stored(40, "{INR}"), since, consenting) is None
    assert _share(READER, stored(2.5, "mmol/L"), since, consenting) is None
