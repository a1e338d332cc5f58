"""Delivery partners' receipts: the share asked, seeded by the delivery, valid receipts in
the person's experiment."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from emeuse.registry import DELIVERY_RECEIPT_REPORTED
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import check_event
from emeuse.simulate.delivery import receipt
from emeuse.simulate.encode import build
from emeuse.simulate.events import KAFKA, Options

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
