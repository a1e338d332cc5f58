"""The partner gateway on the real broker: a partner's feed carries a patient's events only
under a standing consent (live and replayed), and what a partner publishes is checked.

The partner reads its feed and writes its inbound topic with its own SCRAM credential on
the partner listener, as a start-up would.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
from tests.integration.harness import Client, emeuse, metric
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


def dead_letters(partner: Partner, count: int, timeout: float = 30) -> list[MessageDeadLettered]:
    """The partner's dead letters, read with its own credential, once `count` are there."""
    consumer = partner.consumer()
    letters = [TopicPartition(dead_letter_topic(partner.partner_id), p) for p in range(PARTITIONS)]
    consumer.assign(letters)
    consumer.seek_to_beginning(*letters)
    found: list[MessageDeadLettered] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                found += [MessageDeadLettered.FromString(r.value) for r in batch]
    finally:
        consumer.close()
    return found


def publish_as(partner: Partner, message: ReadingRecorded) -> None:
    producer = partner.producer()
    try:
        producer.send(
            inbound_topic(partner.partner_id),
            key=message.patient_pseudonym.encode(),
            value=message.SerializeToString(),
            headers=headers_for(READING_RECORDED, message.patient_pseudonym),
        ).get(timeout=15)
    finally:
        producer.close()


def test_an_impossible_reading_from_a_partner_reaches_no_feed_and_shows_on_its_dead_letters(
    platform, bus, bootstrap, secrets_dir
):
    publisher = add_partner(bootstrap, secrets_dir, new_partner_id(), "--publish", READING)
    reader = add_partner(bootstrap, secrets_dir, new_partner_id(), "--read", READING)
    try:
        patient = random_pseudonym()
        consent(platform, reader, patient, True)
        # A good reading first: the gateway has found the publisher's inbound topic.
        first = reading(patient)
        publish_as(publisher, first)
        feed(reader, {first.reading_id})

        impossible = reading(patient)
        impossible.loinc_code, impossible.value, impossible.unit = "34714-6", 40, "{INR}"
        in_mmol = reading(patient)
        in_mmol.loinc_code, in_mmol.value, in_mmol.unit = "34714-6", 2.5, "mmol/L"
        sent = time.monotonic()
        publish_as(publisher, impossible)
        publish_as(publisher, in_mmol)
        letters = dead_letters(publisher, 2)
        seen_after = time.monotonic() - sent
        last = reading(patient)
        publish_as(publisher, last)

        assert len(letters) == 2, "both readings should be on the publisher's dead letters"
        assert seen_after < 5, f"dead letters took {seen_after:.1f} s"
        refused = {ReadingRecorded.FromString(x.original_value).reading_id: x for x in letters}
        assert set(refused) == {impossible.reading_id, in_mmol.reading_id}
        assert "INR (point of care) 40 {INR} is impossible" in refused[impossible.reading_id].reason
        assert "mmol/L" in refused[in_mmol.reading_id].reason
        assert all(x.source_topic == inbound_topic(publisher.partner_id) for x in letters)

        # The reader, who has the patient's consent, gets the good readings, never the others.
        seen = feed(reader, {first.reading_id, last.reading_id})
        assert impossible.reading_id not in seen and in_mmol.reading_id not in seen

        # The publisher reads its dead letters itself: `emeuse tail` with its settings file.
        tailed = emeuse(
            "tail",
            "dead-letter",
            "--config",
            str(publisher.settings),
            "--from-beginning",
            "--max",
            "2",
            "--timeout",
            "15",
            "--json",
            bootstrap="127.0.0.1:1",  # the settings file's listener is used, not this
        )
        assert tailed.returncode == 0, tailed.stderr
        shown = [json.loads(line) for line in tailed.stdout.splitlines()]
        assert {s["original_event"]["reading_id"] for s in shown} == set(refused)
        assert all("refused by chronic's rules" in s["event"]["reason"] for s in shown)
    finally:
        remove_partner(bootstrap, publisher)
        remove_partner(bootstrap, reader)


def operator(platform, *argv: str) -> subprocess.CompletedProcess[str]:
    """The `emeuse` command as an operator runs it, with the operator's gRPC token."""
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "emeuse"),
            *argv,
            "--gateway",
            platform.services["gateway"].grpc_target,
            "--token-file",
            str(platform.secrets / "operator.token"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_operators_record_show_and_withdraw_consents_and_replay_with_the_emeuse_command(
    platform, bus, bootstrap, secrets_dir
):
    reader = add_partner(bootstrap, secrets_dir, new_partner_id(), "--read", READING)
    try:
        started = datetime.now(UTC) - timedelta(seconds=1)
        patient = random_pseudonym()
        change = [patient, "--partner", reader.partner_id, "--purpose", "remote-monitoring"]
        deadline = time.monotonic() + 30
        while True:  # the gateway learns of a new partner from the registry within a moment
            recorded = operator(platform, "consent", "record", *change, "--territory", "55")
            if recorded.returncode == 0 or time.monotonic() > deadline:
                break
            assert "NOT_FOUND" in recorded.stderr, recorded.stderr
            time.sleep(0.3)
        assert recorded.returncode == 0, recorded.stderr
        assert f"consent recorded: {reader.partner_id}/remote-monitoring" in recorded.stdout
        shared = send(bus, reading(patient))
        feed(reader, {shared})

        withdrawn = operator(platform, "consent", "withdraw", *change, "--territory", "55")
        assert withdrawn.returncode == 0, withdrawn.stderr
        withheld = send(bus, reading(patient))
        shown = operator(platform, "consent", "show", patient, "--json")
        assert shown.returncode == 0, shown.stderr
        [consent] = [json.loads(line) for line in shown.stdout.splitlines()]
        assert consent["partner_id"] == reader.partner_id and not consent.get("stands")
        assert [c.get("granted", False) for c in consent["history"]] == [True, False]

        # Consent given again: a replay delivers what consent covered when each reading
        # happened (and covers now): the reading before the withdrawal, not the one during it.
        again = operator(platform, "consent", "record", *change, "--territory", "55")
        assert again.returncode == 0, again.stderr
        bus.wait_for(READING_RECORDED.name, lambda r: r.get("key") == patient, count=2)
        replayed = operator(
            platform, "partner", "replay", reader.partner_id, "--since", started.isoformat()
        )
        assert replayed.returncode == 0, replayed.stderr
        assert "replayed  1 event(s)" in replayed.stdout
        assert "withheld  1 event(s)" in replayed.stdout
        assert withheld not in feed(reader, {shared})
    finally:
        remove_partner(bootstrap, reader)
