"""One record -> its typed handler, retries with backoff, then the partner's dead letters."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import UTC, datetime

import pytest
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.partner import Reject, RetryPolicy
from emeuse.partner.dispatch import Dispatcher, Handler, Outcome, Record
from emeuse.partner.metrics import PartnerMetrics
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.runtime import envelope as env
from emeuse.runtime.envelope import timestamp
from tests.unit.partner.fakes import FakeProducer, feed_record, patient


def reading(pseudonym: str, value: float = 182.0) -> ReadingRecorded:
    return ReadingRecorded(
        reading_id="r-1",
        patient_pseudonym=pseudonym,
        loinc_code="2339-0",
        value=value,
        unit="mg/dL",
        measured_at=timestamp(datetime(2027, 3, 1, 8, tzinfo=UTC)),
    )


class Setup:
    def __init__(self, retries: int = 2, stop_after_pauses: int | None = None) -> None:
        self.producer = FakeProducer()
        self.registry = CollectorRegistry()
        self.metrics = PartnerMetrics(self.registry)
        self.pauses: list[float] = []
        self.stop_after_pauses = stop_after_pauses
        self.handlers: dict[str, Handler] = {}
        self.retry = RetryPolicy(retries=retries, initial_backoff_s=0.5, multiplier=2)

    async def pause(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        return self.stop_after_pauses is None or len(self.pauses) < self.stop_after_pauses

    def handle(self, message_type, func) -> None:
        self.handlers[message_type.DESCRIPTOR.full_name] = Handler(message_type, func)

    def dispatch(self, record) -> Outcome:
        dispatcher = Dispatcher(
            partner_id="glucoflow",
            experiment_id="glucoflow",
            handlers=self.handlers,
            sender=self.producer,
            metrics=self.metrics,
            retry=self.retry,
            pause=self.pause,
        )
        return asyncio.run(dispatcher.dispatch(Record(**vars(record))))

    def count(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, {"partner": "glucoflow", **labels}) or 0.0

    def dead_letter(self) -> MessageDeadLettered:
        assert len(self.producer.sent) == 1
        sent = self.producer.sent[0]
        assert sent.topic == "emeuse-partner.glucoflow.dead-letter"
        letter = MessageDeadLettered()
        letter.ParseFromString(sent.value or b"")
        return letter


READING = "emeuse.chronic.v1.ReadingRecorded"


def test_a_reading_reaches_its_handler_typed_and_with_its_envelope():
    setup = Setup()
    seen: list[tuple[EventEnvelope, ReadingRecorded]] = []

    async def on_reading(event, message):
        seen.append((event, message))

    setup.handle(ReadingRecorded, on_reading)
    record = feed_record(reading(patient()))
    assert setup.dispatch(record) is Outcome.HANDLED
    event, message = seen[0]
    assert isinstance(message, ReadingRecorded) and message.value == 182.0
    assert event.event_type == READING
    assert event.event_id == dict(record.headers)["ce_id"].decode()
    assert setup.count("emeuse_partner_events_handled_total", type=READING) == 1


def test_an_event_of_a_type_without_handler_is_skipped_and_counted():
    setup = Setup()

    async def on_reading(event, message):
        raise AssertionError("not for alerts")

    setup.handle(ReadingRecorded, on_reading)
    alert = AlertRaised(alert_id="a-1", patient_pseudonym=patient(), rule="threshold.high")
    assert setup.dispatch(feed_record(alert)) is Outcome.SKIPPED
    assert setup.count("emeuse_partner_events_skipped_total", type="other") == 1
    assert setup.producer.sent == []


def test_a_handler_that_fails_then_succeeds_is_retried_with_exponential_backoff():
    setup = Setup(retries=3)
    attempts = []

    async def flaky(event, message):
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("device cloud down")

    setup.handle(ReadingRecorded, flaky)
    assert setup.dispatch(feed_record(reading(patient()))) is Outcome.HANDLED
    assert setup.pauses == [0.5, 1.0]
    assert setup.count("emeuse_partner_handler_failures_total", type=READING) == 2
    assert setup.producer.sent == []


def test_backoff_is_capped():
    policy = RetryPolicy(retries=10, initial_backoff_s=1, max_backoff_s=5, multiplier=3)
    assert [policy.delay(n) for n in range(4)] == [1, 3, 5, 5]


def test_a_handler_that_keeps_failing_sends_the_original_record_to_dead_letters_with_the_reason():
    setup = Setup(retries=2)

    async def broken(event, message):
        raise KeyError("unit")

    setup.handle(ReadingRecorded, broken)
    record = feed_record(reading(patient()), partition=3, offset=41)
    assert setup.dispatch(record) is Outcome.DEAD_LETTERED
    letter = setup.dead_letter()
    assert letter.cause == DeadLetterCause.DEAD_LETTER_CAUSE_HANDLER_FAILED
    assert letter.reason.startswith("handler failed after 3 attempt(s): KeyError")
    assert letter.consumer == "partner/glucoflow"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "emeuse-partner.glucoflow.feed",
        3,
        41,
    )
    assert letter.original_value == record.value
    assert letter.original_key == record.key
    assert dict(letter.original_headers) == dict(record.headers)
    assert setup.pauses == [0.5, 1.0]
    sent = setup.producer.sent[0]
    assert sent.key == record.key
    headers = env.from_headers(sent.headers)
    assert headers.source == "partner/glucoflow"
    assert headers.event_type == "emeuse.platform.v1.MessageDeadLettered"
    assert headers.subject_pseudonym == ""
    assert (
        setup.count(
            "emeuse_partner_events_dead_lettered_total",
            type=READING,
            cause="DEAD_LETTER_CAUSE_HANDLER_FAILED",
        )
        == 1
    )


def test_a_rejected_event_goes_to_dead_letters_at_once_without_retries():
    setup = Setup(retries=5)

    async def picky(event, message):
        raise Reject("unit mmol/L not supported by our meter")

    setup.handle(ReadingRecorded, picky)
    assert setup.dispatch(feed_record(reading(patient()))) is Outcome.DEAD_LETTERED
    letter = setup.dead_letter()
    assert letter.cause == DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT
    assert "mmol/L not supported" in letter.reason
    assert setup.pauses == []


def test_a_record_without_a_valid_envelope_is_dead_lettered_unhandled():
    setup = Setup()

    async def on_reading(event, message):
        raise AssertionError("never called")

    setup.handle(ReadingRecorded, on_reading)
    record = feed_record(reading(patient()), headers=[("ce_type", READING.encode())])
    assert setup.dispatch(record) is Outcome.DEAD_LETTERED
    letter = setup.dead_letter()
    assert letter.cause == DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_ENVELOPE
    assert "missing header" in letter.reason


def test_a_value_that_is_not_the_named_type_is_dead_lettered_as_undecodable():
    setup = Setup()

    async def on_reading(event, message):
        raise AssertionError("never called")

    setup.handle(ReadingRecorded, on_reading)
    good = feed_record(reading(patient()))
    record = type(good)(**{**vars(good), "value": b"\xff\xff\xff"})
    assert setup.dispatch(record) is Outcome.DEAD_LETTERED
    assert setup.dead_letter().cause == DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE


def test_stopping_during_a_backoff_leaves_the_record_unhandled_and_not_dead_lettered():
    setup = Setup(retries=5, stop_after_pauses=1)

    async def broken(event, message):
        raise TimeoutError

    setup.handle(ReadingRecorded, broken)
    assert setup.dispatch(feed_record(reading(patient()))) is Outcome.INTERRUPTED
    assert setup.producer.sent == []


def test_a_dead_letter_that_cannot_be_written_raises_so_the_record_is_not_committed():
    setup = Setup(retries=0)
    setup.producer.fail = True

    async def broken(event, message):
        raise ValueError("boom")

    setup.handle(ReadingRecorded, broken)
    with pytest.raises(ConnectionError):
        setup.dispatch(feed_record(reading(patient())))


def test_logs_carry_ids_never_the_pseudonym_nor_the_payload_nor_the_error_text():
    setup = Setup(retries=1)
    person = patient()

    async def broken(event, message):
        raise ValueError(f"bad reading for {message.patient_pseudonym}")

    setup.handle(ReadingRecorded, broken)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        setup.dispatch(feed_record(reading(person, value=182.5)))
    assert [entry["event"] for entry in logs] == ["event.retrying", "event.dead_lettered"]
    assert person not in repr(logs)
    # With its decimal point: the ids logged are random hex and may hold any digits.
    assert "182.5" not in repr(logs)
    assert logs[0]["error"] == "ValueError"
    assert "event_id" in logs[0] and "correlation_id" in logs[0]


def with_device(device_id: str) -> ReadingRecorded:
    message = reading(patient())
    message.device_id = device_id
    return message


def named_subject(name: str):
    """A feed record whose key and ce_subject are a name (its envelope is then refused)."""
    record = feed_record(reading(patient()))
    headers = tuple(
        (header, name.encode() if header == env.H_SUBJECT else value)
        for header, value in record.headers
    )
    return dataclasses.replace(record, key=name.encode(), headers=headers)


@pytest.mark.parametrize(
    ("record", "secret", "cause", "reason"),
    [
        # An e-mail as device id, in the value: the handler fails quoting it.
        (
            feed_record(with_device("jean@example.fr")),
            "jean@example.fr",
            DeadLetterCause.DEAD_LETTER_CAUSE_HANDLER_FAILED,
            "handler failed after 1 attempt(s); original withheld: it holds a direct "
            "identifier (e-mail address)",
        ),
        # A name as the subject, in the key and the ce_subject header.
        (
            named_subject("Jean Dupont"),
            "Jean Dupont",
            DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_ENVELOPE,
            "ce_subject holds a direct identifier (name-shaped value); it must be a platform "
            "pseudonym (psn-...) that names nobody; original withheld: it holds a direct "
            "identifier (name-shaped value)",
        ),
    ],
)
def test_a_record_naming_someone_is_dead_lettered_withheld_keeping_only_its_hash(
    record, secret, cause, reason
):
    setup = Setup(retries=0)

    async def broken(event, message):
        raise KeyError(f"no unit for {message.device_id}")

    setup.handle(ReadingRecorded, broken)
    assert setup.dispatch(record) is Outcome.DEAD_LETTERED
    letter = setup.dead_letter()
    sent = setup.producer.sent[0]
    assert letter.original_withheld
    assert (letter.cause, letter.reason) == (cause, reason)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        record.topic,
        record.partition,
        record.offset,
    )
    assert letter.original_value_size == len(record.value)
    assert letter.original_value_sha256 == hashlib.sha256(record.value).digest()
    assert not letter.original_key and not letter.original_value
    assert not letter.original_headers and not letter.original_raw_headers
    assert sent.key is None
    assert secret.encode() not in (sent.value or b"")
    assert all(secret.encode() not in value for _, value in sent.headers)


def test_a_record_naming_nobody_keeps_its_original_for_replay():
    setup = Setup(retries=0)

    async def picky(event, message):
        raise Reject("unit mg/dL not handled")

    setup.handle(ReadingRecorded, picky)
    record = feed_record(reading(patient()))
    setup.dispatch(record)
    letter = setup.dead_letter()
    assert not letter.original_withheld
    assert letter.reason == "rejected by the handler: unit mg/dL not handled"
    assert letter.original_value == record.value
