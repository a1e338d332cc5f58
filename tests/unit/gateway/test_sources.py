"""Which events can reach partners: those keyed by the person, co-partitioned with the
consents, so one agent handles a patient's consents and events in order."""

from emeuse.registry import CONSENT_CHANGED, READING_RECORDED, TOPICS
from services.gateway.topics import source_topics


def test_person_keyed_event_topics_are_sources_and_nothing_else():
    sources = source_topics()
    assert READING_RECORDED in sources
    for spec in sources:
        assert spec.key.endswith("_pseudonym") and spec.partitions == CONSENT_CHANGED.partitions
        assert not spec.is_dead_letter and not spec.name.startswith("emeuse.partners.")
    left_out = {spec.name for spec in TOPICS} - {spec.name for spec in sources}
    # Access's agenda is keyed by territory: not joinable with the consents (docs/gateway.md).
    assert "emeuse.access.slot-booked.v1" in left_out
    assert CONSENT_CHANGED.name in left_out
