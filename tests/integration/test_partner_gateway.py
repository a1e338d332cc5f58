"""The partner gateway on the real broker: a partner's feed carries a patient's events only
under a standing consent (live and replayed), and what a partner publishes is checked (its
grants, the event, the owning service's rules, the patient's consent to it).

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

from emeuse.chronic.v1 import chronic_service_pb2 as chronic_api
from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.home.v1.home_events_pb2 import DoorState, SensorEventReported, SensorKind
from emeuse.partners import PARTITIONS, dead_letter_topic, feed_topic, inbound_topic
from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.partners.v1 import gateway_service_pb2_grpc as api_grpc
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import (
    ALERT_RAISED,
    CARE_PLAN_UPDATED,
    PARTNER_REGISTERED,
    READING_RECORDED,
    SENSOR_EVENT_REPORTED,
)
from emeuse.runtime import envelope as env
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import headers_for, new_id, record
from tests.integration.harness import Client, emeuse, metric
from tests.integration.test_chronic_alerts import GLUCOSE_BAND, Chronic, care_plan, enrol
from tests.integration.test_partner_security import (
    READING,
    Partner,
    add_partner,
    new_partner_id,
    remove_partner,
)

SENSOR = SENSOR_EVENT_REPORTED.type_name


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


def replay_audited(bus, patient: str, replay_id: str, timeout: float = 30) -> list[dict]:
    """`emeuse audit --subject` rows of the replay `replay_id`, once there are some (the
    gateway writes its audit records in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        run = emeuse("audit", "--subject", patient, "--json", bootstrap=bus.bootstrap)
        assert run.returncode == 0, run.stderr
        rows = [json.loads(line) for line in run.stdout.splitlines()]
        replays = [row for row in rows if row["method"].endswith("/Replay")]
        if replays or time.monotonic() > deadline:
            assert all(row["call_id"] == replay_id for row in replays), replays
            return replays
        time.sleep(1)


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
    # The replay named no person: the gateway audits each person whose events it delivered.
    for patient in (consenting, other):
        [delivery] = replay_audited(bus, patient, replayed.replay_id)
        assert (delivery["caller_id"], delivery["caller_role"]) == ("operator", "operator")
        assert (delivery["action"], delivery["outcome"]) == ("AUDIT_ACTION_READ", "OK")
        assert delivery["purpose_of_event"] == "HOPERAT"

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
    consent(platform, partner, patient, True)  # the patient consents to the partner
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
    refused: list[MessageDeadLettered] = []
    deadline = time.monotonic() + 45
    while not refused and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=300).values():
            refused += [
                letter
                for letter in map(MessageDeadLettered.FromString, (r.value for r in batch))
                # The admitted reading's patient has no care plan: chronic's refusal of it
                # comes back here too (reported downstream refusals, tested below).
                if letter.consumer == "gateway"
            ]
    consumer.close()
    [letter] = refused
    assert "not granted" in letter.reason
    assert letter.source_topic == inbound_topic(partner.partner_id)
    assert AlertRaised.FromString(letter.original_value).alert_id == alert.alert_id


def dead_letters(
    partner: Partner, count: int, timeout: float = 30, refused_by: str | None = None
) -> list[MessageDeadLettered]:
    """The partner's dead letters (of `refused_by` only, when given), read with its own
    credential, once `count` are there; one per refuser and event id, as a partner dedupes
    (inbound records are checked at least once: a rebalance may check one twice)."""
    consumer = partner.consumer()
    letters = [TopicPartition(dead_letter_topic(partner.partner_id), p) for p in range(PARTITIONS)]
    consumer.assign(letters)
    consumer.seek_to_beginning(*letters)
    found: dict[tuple[str, bytes], MessageDeadLettered] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for letter in (MessageDeadLettered.FromString(r.value) for r in batch):
                    if refused_by is None or letter.consumer == refused_by:
                        found[(letter.consumer, letter.original_headers[env.H_ID])] = letter
    finally:
        consumer.close()
    return list(found.values())


def publish_as(partner: Partner, message: ReadingRecorded) -> str:
    """Publish on the partner's inbound topic with its credential; the event id sent."""
    headers = headers_for(READING_RECORDED, message.patient_pseudonym)
    producer = partner.producer()
    try:
        producer.send(
            inbound_topic(partner.partner_id),
            key=message.patient_pseudonym.encode(),
            value=message.SerializeToString(),
            headers=headers,
        ).get(timeout=15)
    finally:
        producer.close()
    return dict(headers)[env.H_ID].decode()


# The promise for a refused event: on the partner's dead letters within a second.
REFUSED_WITHIN_S = 1.0


def refusal_delays(publisher: Partner, messages: list[ReadingRecorded]) -> dict[str, float]:
    """Publish each message with the publisher's credential and time, from the broker's ack
    of the publish to the letter's arrival on its dead letters (read by a consumer of its
    own, polling from before the publish), in seconds by reading id."""
    consumer = publisher.consumer()
    letters = [
        TopicPartition(dead_letter_topic(publisher.partner_id), p) for p in range(PARTITIONS)
    ]
    consumer.assign(letters)
    consumer.seek_to_end(*letters)
    for tp in letters:
        consumer.position(tp)  # resolved now: only letters written after this are read
    producer = publisher.producer()
    delays: dict[str, float] = {}
    try:
        for message in messages:
            headers = headers_for(READING_RECORDED, message.patient_pseudonym)
            producer.send(
                inbound_topic(publisher.partner_id),
                key=message.patient_pseudonym.encode(),
                value=message.SerializeToString(),
                headers=headers,
            ).get(timeout=15)
            acked = time.monotonic()
            deadline = acked + 30
            while message.reading_id not in delays and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=50).values():
                    for r in batch:
                        letter = MessageDeadLettered.FromString(r.value)
                        refused = ReadingRecorded.FromString(letter.original_value).reading_id
                        if letter.consumer == "gateway" and refused not in delays:
                            delays[refused] = time.monotonic() - acked
            assert message.reading_id in delays, "never on the publisher's dead letters"
    finally:
        producer.close()
        consumer.close()
    return delays


def test_an_impossible_reading_from_a_partner_reaches_no_feed_and_shows_on_its_dead_letters(
    platform, bus, bootstrap, secrets_dir
):
    publisher = add_partner(bootstrap, secrets_dir, new_partner_id(), "--publish", READING)
    reader = add_partner(bootstrap, secrets_dir, new_partner_id(), "--read", READING)
    try:
        patient = random_pseudonym()
        consent(platform, reader, patient, True)
        consent(platform, publisher, patient, True)
        # A good reading first: the gateway has found the publisher's inbound topic.
        first = reading(patient)
        publish_as(publisher, first)
        feed(reader, {first.reading_id})

        def impossible() -> ReadingRecorded:
            inr = reading(patient)
            inr.loinc_code, inr.value, inr.unit = "34714-6", 40, "{INR}"
            return inr

        def in_mmol() -> ReadingRecorded:
            inr = reading(patient)
            inr.loinc_code, inr.value, inr.unit = "34714-6", 2.5, "mmol/L"
            return inr

        # One at a time, each timed from its ack: the slowest, not the mean, keeps the promise.
        # The first in mmol/L is the first unit to convert: it once took 6-12 s (app.py).
        sent = [impossible() if i % 2 == 0 else in_mmol() for i in range(10)]
        delays = refusal_delays(publisher, sent)
        print("refusal delays (s):", sorted(round(d, 3) for d in delays.values()))
        assert max(delays.values()) < REFUSED_WITHIN_S, delays
        last = reading(patient)
        publish_as(publisher, last)

        # The partner's own view: one letter per event (a partner dedupes on ce_id).
        letters = dead_letters(publisher, len(sent), refused_by="gateway")
        refused = {ReadingRecorded.FromString(x.original_value).reading_id: x for x in letters}
        assert set(refused) == {m.reading_id for m in sent}
        assert "INR (point of care) 40 {INR} is impossible" in refused[sent[0].reading_id].reason
        assert "mmol/L" in refused[sent[1].reading_id].reason
        assert all(x.source_topic == inbound_topic(publisher.partner_id) for x in letters)

        # The reader, who has the patient's consent, gets the good readings, never the others.
        seen = feed(reader, {first.reading_id, last.reading_id})
        assert not set(refused) & set(seen)

        # The publisher reads its dead letters itself: `emeuse tail` with its settings file.
        tailed = emeuse(
            "tail",
            "dead-letter",
            "--config",
            str(publisher.settings),
            "--from-beginning",
            "--timeout",
            "5",
            "--json",
            bootstrap="127.0.0.1:1",  # the settings file's listener is used, not this
        )
        assert tailed.returncode == 0, tailed.stderr
        shown = [json.loads(line) for line in tailed.stdout.splitlines()]
        shown = [s for s in shown if s["event"]["consumer"] == "gateway"]
        assert {s["original_event"]["reading_id"] for s in shown} == set(refused)
        assert all("refused by chronic's rules" in s["event"]["reason"] for s in shown)
    finally:
        remove_partner(bootstrap, publisher)
        remove_partner(bootstrap, reader)


def test_a_partner_sends_a_patients_events_only_while_the_patient_consents_to_it(
    platform, bus, bootstrap, secrets_dir
):
    publisher = add_partner(bootstrap, secrets_dir, new_partner_id(), "--publish", READING)
    reader = add_partner(bootstrap, secrets_dir, new_partner_id(), "--read", READING)
    try:
        consenting, never, withdrawn = (random_pseudonym() for _ in range(3))
        for patient in (consenting, never, withdrawn):
            enrol(platform, care_plan(patient, "DIABETES", GLUCOSE_BAND))
            consent(platform, reader, patient, True)  # the reader would see what is admitted
        consent(platform, publisher, withdrawn, True)
        consent(platform, publisher, withdrawn, False)
        # Granted just before the reading is sent: the gateway sees it (RecordConsent has
        # answered, so the change is on the bus, and the inbound check reads up to there).
        consent(platform, publisher, consenting, True)
        admitted, unasked, after_withdrawal = (
            reading(patient) for patient in (consenting, never, withdrawn)
        )
        for message in (admitted, unasked, after_withdrawal):
            publish_as(publisher, message)

        letters = dead_letters(publisher, 2, refused_by="gateway")
        refused = {ReadingRecorded.FromString(x.original_value).reading_id: x for x in letters}
        assert set(refused) == {unasked.reading_id, after_withdrawal.reading_id}
        assert refused[unasked.reading_id].reason == (
            f"no consent: the patient has not consented to partner {publisher.partner_id!r}"
        )
        assert refused[after_withdrawal.reading_id].reason == (
            f"no consent: the patient withdrew consent to partner {publisher.partner_id!r}"
        )
        assert all(x.source_topic == inbound_topic(publisher.partner_id) for x in letters)
        assert {x.cause for x in letters} == {DeadLetterCause.DEAD_LETTER_CAUSE_NO_CONSENT}

        # The consenting patient's reading reached chronic, which placed it in their care.
        summary = chronic_api.GetPatientSummaryRequest(patient_pseudonym=consenting)
        deadline = time.monotonic() + 30
        while not Chronic(platform).GetPatientSummary(summary).latest_values:
            assert time.monotonic() < deadline, "chronic never took the consenting reading"
            time.sleep(0.2)
        [latest] = Chronic(platform).GetPatientSummary(summary).latest_values
        assert (latest.loinc_code, latest.value) == (admitted.loinc_code, admitted.value)
        # The refused ones reached no service and no feed: they never were on the platform.
        on_platform = {
            r["event"].get("reading_id")
            for r in bus.all_records(READING_RECORDED.name)
            if r["key"] in (consenting, never, withdrawn)
        }
        assert on_platform == {admitted.reading_id}
        seen = feed(reader, {admitted.reading_id})
        assert set(seen) == {admitted.reading_id}
        for patient in (never, withdrawn):
            request = chronic_api.GetPatientSummaryRequest(patient_pseudonym=patient)
            assert not Chronic(platform).GetPatientSummary(request).latest_values
    finally:
        remove_partner(bootstrap, publisher)
        remove_partner(bootstrap, reader)


def test_a_reading_a_service_refuses_after_admission_is_reported_to_the_partner_who_sent_it(
    platform, bus, bootstrap, secrets_dir
):
    publisher = add_partner(bootstrap, secrets_dir, new_partner_id(), "--publish", READING)
    try:
        # Possible, so admitted by the gateway; but the patient has no care plan, a rule
        # only chronic can check (its state): chronic refuses it on its own dead letters.
        patient = random_pseudonym()
        consent(platform, publisher, patient, True)
        sent = reading(patient)
        event_id = publish_as(publisher, sent)
        [admitted] = bus.wait_for(
            READING_RECORDED.name, lambda r: r.get("event", {}).get("reading_id") == sent.reading_id
        )
        assert admitted["headers"]["ce_id"] == event_id

        # The publisher reads the refusal with its own settings file, as a partner would.
        tailed = emeuse(
            "tail",
            "dead-letter",
            "--config",
            str(publisher.settings),
            "--from-beginning",
            "--max",
            "1",
            "--timeout",
            "45",
            "--json",
            bootstrap="127.0.0.1:1",
        )
        assert tailed.returncode == 0, tailed.stderr
        [shown] = [json.loads(line) for line in tailed.stdout.splitlines()]
        assert shown["event"]["consumer"] == "chronic"
        assert shown["event"]["reason"] == (
            "refused by chronic: patient is not enrolled in remote monitoring: "
            "no care plan to place the reading in"
        )
        assert shown["original_event_id"] == event_id
        # What it is given back is what it sent: the reading, under the patient's pseudonym.
        assert shown["original_event"]["reading_id"] == sent.reading_id
        assert shown["key"] == patient

        def reported() -> float:
            return metric(
                platform.services["gateway"].metrics(),
                "emeuse_gateway_refusals_reported_total",
                partner=publisher.partner_id,
                consumer="chronic",
            )

        deadline = time.monotonic() + 5  # counted once the transaction has committed
        while reported() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reported() == 1
    finally:
        remove_partner(bootstrap, publisher)


def test_partner_status_shows_grants_consents_feed_lag_and_refusals(
    platform, bus, bootstrap, secrets_dir
):
    both = add_partner(
        bootstrap, secrets_dir, new_partner_id(), "--read", READING, "--publish", READING
    )
    try:
        patient, other = random_pseudonym(), random_pseudonym()
        consent(platform, both, patient, True)
        consent(platform, both, other, True)
        consent(platform, both, other, False)
        read_before = {send(bus, reading(patient)) for _ in range(3)}
        feed(both, read_before)
        # Its app read those three and committed, as the SDK's group would.
        group = f"emeuse-partner.{both.partner_id}.sdk"
        app = both.consumer(
            group_id=group, isolation_level="read_committed", auto_offset_reset="earliest"
        )
        app.subscribe([feed_topic(both.partner_id)])
        handled: set[str] = set()
        deadline = time.monotonic() + 30
        while handled != read_before and time.monotonic() < deadline:
            for batch in app.poll(timeout_ms=300).values():
                handled |= {ReadingRecorded.FromString(r.value).reading_id for r in batch}
        app.commit()
        app.close()
        assert handled == read_before
        waiting = {send(bus, reading(patient)) for _ in range(2)}
        feed(both, read_before | waiting)

        # Two refused by the gateway: an impossible reading, and one about the patient whose
        # consent was withdrawn; one admitted (the consenting patient's) then refused by
        # chronic (the patient has no plan), which comes back on the feed too.
        impossible = reading(other)
        impossible.loinc_code, impossible.value, impossible.unit = "34714-6", 40, "{INR}"
        publish_as(both, impossible)
        publish_as(both, reading(other))
        own = reading(patient)
        publish_as(both, own)
        assert len(dead_letters(both, 3)) == 3
        feed(both, read_before | waiting | {own.reading_id})

        shown = emeuse("partner", "status", both.partner_id, "--json", bootstrap=bootstrap)
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert status["active"] is True
        assert status["grants"]["reads"] == [READING]
        assert status["grants"]["publishes"] == [READING]
        assert status["consents"] == {"patients": 1, "consents": 1}
        assert [(g["group"], g["lag"]) for g in status["groups"]] == [(group, 3)]
        assert status["refusals"] == {"chronic": 1, "gateway": 2}

        # The partner's own view, with its settings file: no registry, no consents.
        own = emeuse(
            "partner",
            "status",
            both.partner_id,
            "--config",
            str(both.settings),
            "--json",
            bootstrap="127.0.0.1:1",
        )
        assert own.returncode == 0, own.stderr
        mine = json.loads(own.stdout)
        assert mine["consents"] is None and mine["grants"]["publishes"] == [READING]
        assert mine["groups"] == status["groups"] and mine["refusals"] == status["refusals"]
    finally:
        remove_partner(bootstrap, both)


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


def send_happened(bus, message: ReadingRecorded, happened: datetime) -> str:
    """A reading whose event happened at `happened` (ce_time), sent now."""
    envelope = env.new_envelope(
        event_type=READING_RECORDED.type_name,
        source="emeuse/integration-tests",
        subject_pseudonym=message.patient_pseudonym,
        territory=env.territory_from_code("55"),
        experiment_id="integration-tests",
        schema_version=READING_RECORDED.schema_version,
        occurred_at=happened,
    )
    bus.send(
        READING_RECORDED.name,
        message.patient_pseudonym.encode(),
        message.SerializeToString(),
        env.to_headers(envelope),
    )
    return message.reading_id


def test_a_backfill_delivers_exactly_what_a_new_consent_covers_marked_as_replayed(
    platform, bus, bootstrap, secrets_dir
):
    reader = add_partner(bootstrap, secrets_dir, new_partner_id(), "--read", READING)
    try:
        now = datetime.now(UTC)
        patient = random_pseudonym()
        before_window = send_happened(bus, reading(patient), now - timedelta(days=3))
        in_window = send_happened(bus, reading(patient), now - timedelta(days=1))

        # Both handled by the gateway while the patient had no consent: withheld.
        def withheld() -> float:
            return metric(
                platform.services["gateway"].metrics(),
                "emeuse_gateway_events_withheld_total",
                partner=reader.partner_id,
            )

        deadline = time.monotonic() + 45
        while withheld() < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert withheld() == 2

        # The patient consents, covering their data from the start of the episode (2 days).
        change = [patient, "--partner", reader.partner_id, "--purpose", "remote-monitoring"]
        covers = (now - timedelta(days=2)).isoformat()
        deadline = time.monotonic() + 30
        while True:  # the gateway learns of a new partner from the registry within a moment
            recorded = operator(
                platform, "consent", "record", *change, "--territory", "55", "--covers-from", covers
            )
            if recorded.returncode == 0 or time.monotonic() > deadline:
                break
            assert "NOT_FOUND" in recorded.stderr, recorded.stderr
            time.sleep(0.3)
        assert recorded.returncode == 0, recorded.stderr
        live = send(bus, reading(patient))
        feed(reader, {live})

        backfill = operator(platform, "partner", "replay", reader.partner_id, "--patient", patient)
        assert backfill.returncode == 0, backfill.stderr
        assert "replayed  2 event(s)" in backfill.stdout  # the one in the window, and the live
        assert "withheld  1 event(s)" in backfill.stdout  # before the window: never
        replay_id = backfill.stdout.split("replay ", 1)[1].split(",", 1)[0]

        seen = feed(reader, {in_window, live})
        assert before_window not in seen
        # A handler tells them apart: the envelope a partner's app is given (the SDK reads
        # it from the headers) has the replay's id on replayed copies only.
        marks = {
            reading_id: sorted(env.from_headers(h).replay_id for h in copies)
            for reading_id, copies in seen.items()
        }
        assert marks == {in_window: [replay_id], live: ["", replay_id]}

        shown = operator(platform, "consent", "show", patient)
        assert f"(covering from {covers[:19]}" in shown.stdout
    finally:
        remove_partner(bootstrap, reader)


def test_a_partner_may_ask_not_to_get_its_own_events_back(platform, bus, bootstrap, secrets_dir):
    both = add_partner(
        bootstrap,
        secrets_dir,
        new_partner_id(),
        "--read",
        READING,
        "--publish",
        READING,
        "--without-own-events",
    )
    try:
        patient = random_pseudonym()
        consent(platform, both, patient, True)
        own = reading(patient)
        publish_as(both, own)
        bus.wait_for(
            READING_RECORDED.name, lambda r: r.get("event", {}).get("reading_id") == own.reading_id
        )
        # Admitted before the platform's reading, on the same partition: handled before it.
        theirs = send(bus, reading(patient))
        assert own.reading_id not in feed(both, {theirs})

        granted = emeuse(
            "partner",
            "grant",
            both.partner_id,
            "--own-events",
            "send",
            "--territory",
            "55",
            "--secrets-dir",
            str(secrets_dir),
            bootstrap=bootstrap,
        )
        assert granted.returncode == 0, granted.stderr
        assert "own events  in its feed" in granted.stdout
        deadline = time.monotonic() + 30
        again = reading(patient)
        publish_as(both, again)
        # The gateway follows the registry within a moment: until then it may withhold.
        while time.monotonic() < deadline:
            try:
                feed(both, {again.reading_id}, timeout=3)
                break
            except AssertionError:
                again = reading(patient)
                publish_as(both, again)
        assert again.reading_id in feed(both, {again.reading_id})
        assert own.reading_id not in feed(both, {again.reading_id})
    finally:
        remove_partner(bootstrap, both)


def test_a_partner_cannot_set_a_care_plan_even_with_a_grant_written_by_hand(
    platform, bus, bootstrap, secrets_dir
):
    partner = add_partner(bootstrap, secrets_dir, new_partner_id(), "--publish", READING)
    try:
        # Operations cannot grant it: `partner grant` refuses, naming why.
        asked = emeuse(
            "partner",
            "grant",
            partner.partner_id,
            "--publish",
            CARE_PLAN_UPDATED.type_name,
            "--territory",
            "55",
            "--secrets-dir",
            str(secrets_dir),
            bootstrap=bootstrap,
        )
        assert asked.returncode == 1
        assert "only the chronic service writes it" in asked.stderr

        # A registration that grants it anyway (written by hand, or from before the rule).
        forged = PartnerRegistered(
            partner_id=partner.partner_id,
            purposes=["remote-monitoring"],
            publishable_event_types=[READING, CARE_PLAN_UPDATED.type_name],
            experiments=["integration-tests"],
            active=True,
            registered_at=env.timestamp(datetime.now(UTC)),
        )
        bus.send(
            PARTNER_REGISTERED.name,
            partner.partner_id.encode(),
            forged.SerializeToString(),
            headers_for(PARTNER_REGISTERED, ""),
        )
        patient = random_pseudonym()
        enrol(platform, care_plan(patient, "DIABETES", GLUCOSE_BAND))
        lax = care_plan(patient, "DIABETES", {**GLUCOSE_BAND, "critical_high": 1000})
        producer = partner.producer()
        letter, sent = None, 0
        deadline = time.monotonic() + 45
        try:
            # Until the gateway reads the forged registration it refuses the type as not
            # granted; once it has, it refuses it all the same, for what it is.
            while letter is None or "not granted" in letter.reason:
                assert time.monotonic() < deadline, "the gateway never read the forged grant"
                sent += 1
                headers = headers_for(CARE_PLAN_UPDATED, patient)
                producer.send(
                    inbound_topic(partner.partner_id),
                    key=patient.encode(),
                    value=lax.SerializeToString(),
                    headers=headers,
                ).get(timeout=15)
                sent_id = dict(headers)[env.H_ID]
                letters = dead_letters(partner, sent, refused_by="gateway")
                [letter] = [x for x in letters if x.original_headers[env.H_ID] == sent_id]
        finally:
            producer.close()
        assert letter.reason == (
            "emeuse.chronic.care-plan-updated.v1 is written by the chronic service only (a care "
            "plan sets a patient's clinical thresholds and care team); no partner may publish "
            "it, whatever its grants say"
        )
        assert letter.source_topic == inbound_topic(partner.partner_id)
        # The platform never saw it: the only plan on the topic is the prescriber's.
        plans = [
            r["event"].get("care_plan_id")
            for r in bus.all_records(CARE_PLAN_UPDATED.name)
            if r["key"] == patient
        ]
        assert lax.care_plan_id not in plans and plans
    finally:
        remove_partner(bootstrap, partner)


def test_a_platform_event_its_service_will_refuse_reaches_no_feed_and_is_counted(
    platform, bus, bootstrap, secrets_dir
):
    reader = add_partner(
        bootstrap, secrets_dir, new_partner_id(), "--read", READING, "--read", SENSOR
    )
    try:
        patient = random_pseudonym()
        consent(platform, reader, patient, True)
        # Written straight on the platform's topics, as a device integration of the
        # platform's own would: no inbound check stands between them and the gateway.
        impossible = reading(patient)
        impossible.loinc_code, impossible.value, impossible.unit = "34714-6", 40, "{INR}"
        in_mmol = reading(patient)
        in_mmol.loinc_code, in_mmol.value, in_mmol.unit = "34714-6", 2.5, "mmol/L"
        stateless = door(patient, DoorState.DOOR_STATE_UNSPECIFIED)
        for message in (impossible, in_mmol):
            send(bus, message)
        bus.send(*record(SENSOR_EVENT_REPORTED, stateless, patient))
        # Valid ones after them, on the same partitions: handled after them.
        valid = send(bus, reading(patient))
        opened = door(patient, DoorState.DOOR_STATE_OPENED)
        bus.send(*record(SENSOR_EVENT_REPORTED, opened, patient))

        seen = feed_ids(reader, {valid, opened.sensor_event_id})
        assert set(seen) == {valid, opened.sensor_event_id}

        def counted(event_type: str, rule: str) -> float:
            return metric(
                platform.services["gateway"].metrics(),
                "emeuse_gateway_events_invalid_total",
                type=event_type,
                rule=rule,
            )

        deadline = time.monotonic() + 5  # counted once the transaction has committed
        while counted(SENSOR, "home:door-state") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counted(READING, "chronic:range") >= 1
        assert counted(READING, "chronic:unit") >= 1
        assert counted(SENSOR, "home:door-state") >= 1

        # The owner sets the impossible reading aside, with its reason; the gateway does not
        # dead-letter it a second time.
        [refused] = bus.wait_for(
            "emeuse.chronic.dead-letter.v1",
            lambda r: r.get("original_event", {}).get("reading_id") == impossible.reading_id,
        )
        assert "INR (point of care) 40 {INR} is impossible" in refused["event"]["reason"]
        withheld = {impossible.reading_id, in_mmol.reading_id, stateless.sensor_event_id}
        for letter in bus.all_records("emeuse.gateway.dead-letter.v1"):
            original = letter.get("original_event", {})
            assert original.get("reading_id", original.get("sensor_event_id")) not in withheld
    finally:
        remove_partner(bootstrap, reader)


def door(patient: str, state: DoorState.ValueType) -> SensorEventReported:
    report = SensorEventReported(
        sensor_event_id=new_id("s"),
        resident_pseudonym=patient,
        device_id="door-01",
        kind=SensorKind.SENSOR_KIND_DOOR,
        door_state=state,
    )
    report.occurred_at.FromDatetime(datetime.now(UTC))
    return report


def feed_ids(partner: Partner, wanted: set[str], timeout: float = 45) -> dict[str, str]:
    """Reading and sensor event ids in the partner's feed, with their type, once `wanted`
    are there (read with its credential, committed records only)."""
    consumer = partner.consumer(isolation_level="read_committed")
    partitions = [TopicPartition(feed_topic(partner.partner_id), p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                for rec in batch:
                    event_type = env.header_map(rec.headers)[env.H_TYPE].decode()
                    if event_type == READING:
                        seen[ReadingRecorded.FromString(rec.value).reading_id] = event_type
                    else:
                        report = SensorEventReported.FromString(rec.value)
                        seen[report.sensor_event_id] = event_type
            if wanted <= set(seen):
                return seen
    finally:
        consumer.close()
    raise AssertionError(f"missing from the feed: {wanted - set(seen)}")
