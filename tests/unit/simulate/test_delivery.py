"""Delivery partners' receipts: the share asked, seeded by the delivery, valid receipts in
the person's experiment."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from emeuse.registry import DELIVERY_RECEIPT_REPORTED, PREVENTION_ACTION_RECORDED
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import check_event
from emeuse.simulate.delivery import acted_on, receipt
from emeuse.simulate.encode import build
from emeuse.simulate.events import KAFKA, Options, SimEvent
from services.prevention.domain.actions import check_action

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PERSON = "psn-" + "d" * 32


def asked(n: int, attempt: int = 1, experiment: str = "prevention-meuse") -> dict:
    """A MessageDeliveryRequested record as `emeuse tail` shows it."""
    return {
        "topic": "emeuse.prevention.message-delivery-requested.v1",
        "headers": {"ce_territory": "54", "ce_experiment": experiment},
        "event": {
            "message_id": f"msg-{n}",
            "person_pseudonym": PERSON,
            "channel": "sms",
            "template_id": "campaign.screening.colorectal",
            "attempt": attempt,
        },
    }


def test_the_share_asked_gets_a_receipt_some_failed_and_the_same_delivery_the_same_one():
    options = Options(receipt_share=0.8, delivery_failed_rate=0.25)
    reported = [receipt(1, asked(n), NOW, options) for n in range(2000)]
    received = [r for r in reported if r is not None]
    assert len(received) / 2000 == pytest.approx(0.8, abs=0.03)
    kinds = Counter(event.kind for _, event in received)
    assert set(kinds) == {"delivery.receipt_delivered", "delivery.receipt_failed"}
    assert kinds["delivery.receipt_failed"] / len(received) == pytest.approx(0.25, abs=0.03)
    assert all(1 <= delay <= 5 for delay, _ in received)
    assert reported == [receipt(1, asked(n), NOW, options) for n in range(2000)]
    # Another seed, other draws; another attempt of a message, a draw of its own.
    assert reported != [receipt(2, asked(n), NOW, options) for n in range(2000)]
    retried = [receipt(1, asked(n, attempt=2), NOW, options) for n in range(2000)]
    assert [r is None for r in retried] != [r is None for r in reported]


def test_a_receipt_is_a_valid_event_in_the_request_s_territory_and_experiment():
    options = Options(receipt_share=1.0, delivery_failed_rate=0.0)
    reported = receipt(7, asked(3, experiment="sim-eval-1"), NOW, options)
    assert reported is not None
    delay, event = reported
    assert (event.via, event.target) == (KAFKA, DELIVERY_RECEIPT_REPORTED.name)
    assert (event.territory, event.experiment, event.subject) == ("54", "sim-eval-1", PERSON)
    assert event.at == NOW + timedelta(seconds=delay)
    message = build(DELIVERY_RECEIPT_REPORTED.message, event.message)
    envelope = env.new_envelope(
        event_type=DELIVERY_RECEIPT_REPORTED.type_name,
        source="emeuse/simulate",
        subject_pseudonym=PERSON,
        territory=env.territory_from_code(event.territory),
        experiment_id=event.experiment,
        schema_version=DELIVERY_RECEIPT_REPORTED.schema_version,
        occurred_at=event.at,
        event_id="e-1",
    )
    check_event(DELIVERY_RECEIPT_REPORTED, envelope, message, PERSON)  # raises if not
    assert (message.message_id, message.attempt, message.channel) == ("msg-3", 1, "sms")
    assert event.message["status"] == "DELIVERY_STATUS_DELIVERED"
    failed = receipt(7, asked(3), NOW, Options(receipt_share=1.0, delivery_failed_rate=1.0))
    assert failed is not None and failed[1].message["failure_code"] == "sim.unreachable"


def test_with_no_receipt_share_no_delivery_is_reported():
    options = Options(receipt_share=0.0)
    assert all(receipt(1, asked(n), NOW, options) is None for n in range(200))


def reminder(n: int, programme: str) -> dict:
    record = asked(n)
    record["event"]["programme"] = programme
    return record


def test_a_share_of_delivered_reminders_is_reported_acted_on_as_a_valid_event():
    options = Options(receipt_share=1.0, delivery_failed_rate=0.0, reminder_acted_share=0.3)
    records = [reminder(n, "screening.colorectal") for n in range(2000)]
    delivered = [receipt(1, r, NOW, options) for r in records]
    reported = [acted_on(1, r, d[1], options) for r, d in zip(records, delivered, strict=True) if d]
    acted = [a for a in reported if a is not None]
    assert len(acted) / 2000 == pytest.approx(0.3, abs=0.03)
    assert reported == [
        acted_on(1, r, d[1], options) for r, d in zip(records, delivered, strict=True) if d
    ]
    delay, event = acted[0]
    assert 5 <= delay <= 30
    assert (event.via, event.target) == (KAFKA, PREVENTION_ACTION_RECORDED.name)
    assert (event.territory, event.experiment, event.subject) == ("54", "prevention-meuse", PERSON)
    message = build(PREVENTION_ACTION_RECORDED.message, event.message)
    envelope = env.new_envelope(
        event_type=PREVENTION_ACTION_RECORDED.type_name,
        source="emeuse/simulate",
        subject_pseudonym=PERSON,
        territory=env.territory_from_code(event.territory),
        experiment_id=event.experiment,
        schema_version=PREVENTION_ACTION_RECORDED.schema_version,
        occurred_at=event.at,
        event_id="e-2",
    )
    check_event(PREVENTION_ACTION_RECORDED, envelope, message, PERSON)  # raises if not
    check_action(message)  # what the evaluation counts, not a dead letter
    assert message.acted_at.ToDatetime(tzinfo=UTC) > NOW


def acted_after_receipt(record: dict, options: Options) -> SimEvent | None:
    delivered = receipt(1, record, NOW, options)
    assert delivered is not None
    action = acted_on(1, record, delivered[1], options)
    return action[1] if action else None


def test_only_delivered_reminders_are_acted_on_and_a_dose_answers_a_vaccination():
    always = Options(receipt_share=1.0, delivery_failed_rate=0.0, reminder_acted_share=1.0)
    given = acted_after_receipt(reminder(1, "vaccination.hpv"), always)
    assert given is not None
    assert given.message["kind"] == "PREVENTION_ACTION_KIND_VACCINE_GIVEN"
    assert acted_after_receipt(asked(2), always) is None  # a campaign message: no series
    failing = Options(receipt_share=1.0, delivery_failed_rate=1.0, reminder_acted_share=1.0)
    assert acted_after_receipt(reminder(3, "screening.breast"), failing) is None
