"""Delivery partners (app, SMS, e-mail) reporting what became of the messages prevention
hands them, as their receipts would.

Each `MessageDeliveryRequested` of a simulated person gets a receipt for `receipt_share` of
them, the rest none (a partner that reports nothing back); of those receipts,
`delivery_failed_rate` say FAILED (prevention then tries the person's next channel, a new
attempt with a receipt of its own), the others DELIVERED. A receipt comes 1 to 5 seconds
after the request, on Kafka, in the request's territory and experiment (the person's: the
evaluation counts it there). The draws are seeded by the message's id and attempt: the same
delivery gets the same receipt. Which messages prevention sends, and when, is its own
doing, so what this sends is not part of the events a seed fixes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from emeuse.registry import DELIVERY_RECEIPT_REPORTED
from emeuse.simulate.events import KAFKA, Options, SimEvent, rfc3339

FAILURE_CODE = "sim.unreachable"


def receipt(
    seed: int, record: dict[str, Any], now: datetime, options: Options
) -> tuple[float, SimEvent] | None:
    """Seconds from now until the partner reports the delivery `record` asks for (as
    `emeuse tail` shows it), and the receipt; None when it reports nothing."""
    asked, headers = record["event"], record["headers"]
    message_id, attempt = asked["message_id"], int(asked.get("attempt") or 1)
    rng = random.Random(f"emeuse-simulate-receipt-{seed}-{message_id}-{attempt}")
    if rng.random() >= options.receipt_share:
        return None
    failed = rng.random() < options.delivery_failed_rate
    delay = rng.uniform(1, 5)
    at = now + timedelta(seconds=delay)
    status = "FAILED" if failed else "DELIVERED"
    message = {
        "receipt_id": f"rcpt-{message_id}-{attempt}",
        "message_id": message_id,
        "person_pseudonym": asked["person_pseudonym"],
        "status": f"DELIVERY_STATUS_{status}",
        "channel": asked.get("channel", ""),
        "attempt": attempt,
        "reported_at": rfc3339(at),
    }
    if failed:
        message["failure_code"] = FAILURE_CODE
    event = SimEvent(
        f"delivery.receipt_{status.lower()}",
        KAFKA,
        DELIVERY_RECEIPT_REPORTED.name,
        headers.get("ce_territory", "55"),
        asked["person_pseudonym"],
        at,
        message["receipt_id"],
        message,
        experiment=headers.get("ce_experiment", ""),
    )
    return delay, event
