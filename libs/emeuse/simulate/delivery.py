"""Delivery partners (app, SMS, e-mail) reporting what became of the messages prevention
hands them, as their receipts would.

Each `MessageDeliveryRequested` of a simulated person gets a receipt for `receipt_share` of
them, the rest none (a partner that reports nothing back); of those receipts,
`delivery_failed_rate` say FAILED (prevention then tries the person's next channel, a new
attempt with a receipt of its own), the others DELIVERED. A receipt comes 1 to 5 seconds
after the request, on Kafka, in the request's territory and experiment (the person's: the
evaluation counts it there). The draws are seeded by the message's id and attempt: the same
delivery gets the same receipt. Of the screening and vaccination reminders delivered,
`reminder_acted_share` are reported acted on (a screening done, a dose given) 5 to 30
seconds after the receipt, on Kafka, as a lab's or pharmacy's back end would. Which
messages prevention sends, and when, is its own doing, so what this sends is not part of
the events a seed fixes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from emeuse.registry import DELIVERY_RECEIPT_REPORTED, PREVENTION_ACTION_RECORDED
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


# The national programmes' reminder series (services/prevention/domain/programmes.py) and
# the action a lab or pharmacy reports for each.
ACTION_OF_SERIES = {
    "screening.colorectal": "PREVENTION_ACTION_KIND_SCREENING_DONE",
    "screening.breast": "PREVENTION_ACTION_KIND_SCREENING_DONE",
    "vaccination.hpv": "PREVENTION_ACTION_KIND_VACCINE_GIVEN",
}


def acted_on(
    seed: int, record: dict[str, Any], delivered: SimEvent, options: Options
) -> tuple[float, SimEvent] | None:
    """For a delivered screening or vaccination reminder (`record` asked it, `delivered` is
    its receipt), `reminder_acted_share` of the time: seconds from the receipt until a lab
    or pharmacy reports the person acted on it, and that report; None otherwise (another
    message, or not acted on). Seeded by the message, as the receipt."""
    asked = record["event"]
    kind = ACTION_OF_SERIES.get(asked.get("programme", ""))
    if kind is None or delivered.message.get("status") != "DELIVERY_STATUS_DELIVERED":
        return None
    rng = random.Random(f"emeuse-simulate-acted-{seed}-{asked['message_id']}")
    if rng.random() >= options.reminder_acted_share:
        return None
    delay = rng.uniform(5, 30)
    at = delivered.at + timedelta(seconds=delay)
    message = {
        "action_id": f"act-{asked['message_id']}",
        "person_pseudonym": asked["person_pseudonym"],
        "programme": asked["programme"],
        "kind": kind,
        "acted_at": rfc3339(at),
    }
    event = SimEvent(
        "prevention.reminder_acted_on",
        KAFKA,
        PREVENTION_ACTION_RECORDED.name,
        delivered.territory,
        asked["person_pseudonym"],
        at,
        message["action_id"],
        message,
        experiment=delivered.experiment,
    )
    return delay, event
