from types import SimpleNamespace

from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from emeuse.runtime.pseudonym import random_pseudonym
from emeuse.runtime.routing import Router

CHANGELOG = "emeuse-chronic-patient_to_state-changelog"


def an_app(me: str, owners: dict[str, list[int]]) -> SimpleNamespace:
    """Two instances' table assignment, as faust's router reports it."""
    metadata = {url: {CHANGELOG: partitions} for url, partitions in owners.items()}
    return SimpleNamespace(
        conf=SimpleNamespace(canonical_url=me),
        router=SimpleNamespace(table_metadata=lambda name: metadata),
    )


TABLE = SimpleNamespace(
    name="patient_to_state",
    partitions=6,
    changelog_topic=SimpleNamespace(get_topic_name=lambda: CHANGELOG),
)
OWNERS = {"http://10.0.0.1:50052": [0, 1, 2], "http://10.0.0.2:50052": [3, 4, 5]}


def partition_a_producer_picks(key: str) -> int:
    # kafka-python's own murmur2, as its DefaultPartitioner (and the CLI) uses it.
    return (kafka_python_murmur2(key.encode()) & 0x7FFFFFFF) % 6


def test_a_key_is_answered_where_a_kafka_producer_sent_it():
    for _ in range(50):
        patient = random_pseudonym()
        owner = Router(an_app("http://10.0.0.1:50052", OWNERS), 1.0, "t" * 43).owner(TABLE, patient)
        if partition_a_producer_picks(patient) < 3:
            assert owner is None  # this instance holds it
        else:
            assert owner == "10.0.0.2:50052"


def test_without_assignment_metadata_the_instance_answers_itself():
    assert (
        Router(an_app("http://10.0.0.1:50052", {}), 1.0, "t" * 43).owner(TABLE, random_pseudonym())
        is None
    )
