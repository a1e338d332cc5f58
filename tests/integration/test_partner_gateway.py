"""The partner gateway on the real broker: a partner's feed carries a patient's events only
under a standing consent (live and replayed), and what a partner publishes is checked.

The partner reads its feed and writes its inbound topic with its own SCRAM credential on
the partner listener, as a start-up would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from kafka import TopicPartition

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.partners import PARTITIONS, dead_letter_topic, feed_topic, inbound_topic
from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.partners.v1 import gateway_service_pb2_grpc as api_grpc
from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from emeuse.registry import ALERT_RAISED, READING_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import headers_for, new_id, record
from tests.integration.harness import Client, metric
from tests.integration.test_partner_security import (
    READING,
    Partner,
    add_partner,
    new_partner_id,
    remove_partner,
)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-partners")


@pytest.fixture(scope="module")
def partner(bootstrap: str, secrets_dir: Path) -> Iterator[Partner]:
    added = add_partner(
        bootstrap, secrets_dir, new_partner_id(), "--read", READING, "--publish", READING
    )
    yield added
    remove_partner(bootstrap, added)


def gateway(platform) -> Client:
    return Client(
        platform.services["gateway"].grpc_target, api_grpc.PartnerGatewayServiceStub, platform.auth
    )


def consent(platform, partner: Partner, patient: str, granted: bool) -> None:
    request = api.RecordConsentRequest(
        patient_pseudonym=patient,
        partner_id=partner.partner_id,
        purpose="remote-monitoring",
        granted=granted,
        territory="55",
        experiment_id="integration-tests",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            gateway(platform).RecordConsent(request)
            return
        except grpc.RpcError as error:
            # The gateway learns of a new partner from the registry within a moment.
            if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def reading(patient: str, minutes_ago: float = 0) -> ReadingRecorded:
    message = ReadingRecorded(
        reading_id=new_id("r"),
        patient_pseudonym=patient,
        loinc_code="2339-0",
        value=110,
        unit="mg/dL",
    )
    message.measured_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=minutes_ago))
    return message


def send(bus, message: ReadingRecorded) -> str:
    bus.send(*record(READING_RECORDED, message, message.patient_pseudonym))
    return message.reading_id


def feed(partner: Partner, wanted: set[str], timeout: float = 45) -> dict[str, list]:
    """Reading ids in the partner's feed (read with its credential, committed records only,
    as a partner must: the gateway writes feeds in transactions), once `wanted` are there."""
    consumer = partner.consumer(isolation_level="read_committed")
    partitions = [TopicPartition(feed_topic(partner.partner_id), p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen: dict[str, list] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                for rec in batch:
                    headers = env.header_map(rec.headers)
                    assert headers[env.H_TYPE] == READING.encode()
                    seen.setdefault(ReadingRecorded.FromString(rec.value).reading_id, []).append(
                        headers
                    )
            if wanted <= set(seen):
                return seen
    finally:
        consumer.close()
    raise AssertionError(f"missing from the feed: {wanted - set(seen)}")


def test_a_partner_gets_a_patients_events_only_while_consent_stands(platform, bus, partner):
    started = datetime.now(UTC) - timedelta(seconds=1)
    consenting, other = random_pseudonym(), random_pseudonym()
    consent(platform, partner, consenting, True)
    shared = send(bus, reading(consenting))

    # No consent: nothing. The patient's later consent does not reach back before it.
    before = send(bus, reading(other))
    consent(platform, partner, other, True)
    after = send(bus, reading(other))

    # A withdrawal applies to every event handled after it; consent given again resumes.
    seen = feed(partner, {shared, after})
    consent(platform, partner, consenting, False)
    while_withdrawn = send(bus, reading(consenting))
    consent(platform, partner, consenting, True)
    resumed = send(bus, reading(consenting))
    seen = feed(partner, {shared, after, resumed})
    assert before not in seen and while_withdrawn not in seen
    assert set(seen) == {shared, after, resumed}
    # Events are passed on as they are: the platform's envelope, the patient as subject.
    assert seen[shared][0][env.H_SUBJECT] == consenting.encode()
    metrics = platform.services["gateway"].metrics()
    assert metric(metrics, "emeuse_gateway_events_withheld_total", type=READING) >= 2
    assert metric(metrics, "emeuse_gateway_consent_applied_seconds_count") >= 4

    # A replay sends them again as consent stood for each event (and stands now).
    replayed = gateway(platform).Replay(
        api.ReplayRequest(partner_id=partner.partner_id, since=env.timestamp(started)),
        timeout=120,
    )
    assert replayed.events_replayed == 3
    assert replayed.events_withheld == 2
    again = feed(partner, {shared, after, resumed})
    replay_marks = {
        reading_id
        for reading_id, copies in again.items()
        for headers in copies
        if headers.get("emeuse_replay") == replayed.replay_id.encode()
    }
    assert replay_marks == {shared, after, resumed}

    consents = gateway(platform).GetPatientConsents(
        api.GetPatientConsentsRequest(patient_pseudonym=consenting)
    )
    [standing] = consents.consents
    assert standing.stands and [c.granted for c in standing.history] == [True, False, True]


def test_a_consent_change_asked_again_answers_as_the_first_time(platform, partner):
    patient = random_pseudonym()
    consent(platform, partner, patient, True)  # waits until the gateway knows the partner
    client = gateway(platform)

    def record_twice(granted: bool) -> str:
        request = api.RecordConsentRequest(
            patient_pseudonym=patient,
            partner_id=partner.partner_id,
            purpose="remote-monitoring",
            granted=granted,
            territory="55",
            experiment_id="integration-tests",
        )
        first = client.RecordConsent(request)
        assert client.RecordConsent(request) == first
        return first.event_id

    granted = record_twice(True)
    withdrawn = record_twice(False)
    assert granted != withdrawn
    [stated] = client.GetPatientConsents(
        api.GetPatientConsentsRequest(patient_pseudonym=patient)
    ).consents
    # One grant (the first call above) and one withdrawal: the repeats changed nothing.
    assert [c.granted for c in stated.history] == [True, False]
    assert not stated.stands


def test_what_a_partner_publishes_is_checked_and_stamped_before_the_platform_takes_it(
    platform, bus, partner
):
    patient = random_pseudonym()
    producer = partner.producer()
    try:
        granted = reading(patient)
        headers = headers_for(READING_RECORDED, patient)  # says partner/integration-tests
        producer.send(
            inbound_topic(partner.partner_id),
            key=patient.encode(),
            value=granted.SerializeToString(),
            headers=headers,
        ).get(timeout=15)
        alert = AlertRaised(alert_id=new_id("a"), patient_pseudonym=patient, rule="x")
        producer.send(
            inbound_topic(partner.partner_id),
            key=patient.encode(),
            value=alert.SerializeToString(),
            headers=headers_for(ALERT_RAISED, patient),
        ).get(timeout=15)
    finally:
        producer.close()

    [admitted] = bus.wait_for(
        READING_RECORDED.name,
        lambda r: r.get("event", {}).get("reading_id") == granted.reading_id,
    )
    assert admitted["headers"]["ce_source"] == f"partner/{partner.partner_id}"
    assert admitted["key"] == patient

    consumer = partner.consumer()
    letters = [TopicPartition(dead_letter_topic(partner.partner_id), p) for p in range(PARTITIONS)]
    consumer.assign(letters)
    consumer.seek_to_beginning(*letters)
    refused = []
    deadline = time.monotonic() + 45
    while not refused and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=300).values():
            refused += [MessageDeadLettered.FromString(r.value) for r in batch]
    consumer.close()
    [letter] = refused
    assert "not granted" in letter.reason
    assert letter.source_topic == inbound_topic(partner.partner_id)
    assert AlertRaised.FromString(letter.original_value).alert_id == alert.alert_id
