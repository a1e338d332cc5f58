"""Refusals downstream, reported to the partner who published the event.

An event a partner published passes the gateway's inbound checks, then a service may still
refuse it with a rule that needs its state (chronic: the patient has no care plan). The
service sets it aside on its own dead-letter topic, which the partner cannot read; the
gateway reads those topics (kernel inputs, so each refusal is reported once, in the
transaction that commits its offset) and copies each letter whose original `ce_source` is
`partner/<id>` to that partner's dead-letter topic. The copy holds what the partner sent
(the record as admitted) and the service's reason; a failure of the service itself (a
bug, not the event) is reported without its text, which may name anything the service
held.
"""

from __future__ import annotations

import structlog

from emeuse.kernel.outputs import OutRecord
from emeuse.kernel.tx import Tx
from emeuse.partners import PARTNER_ID, dead_letter_topic
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.runtime import envelope as env
from emeuse.runtime.events import Event
from services.gateway.directory import PartnerDirectory
from services.gateway.metrics import REFUSALS_REPORTED

log = structlog.get_logger("emeuse.gateway")
PARTNER_SOURCE = "partner/"
# Causes that are the event's fault: the service's own reason is the partner's answer.
EVENT_FAULTS = frozenset(
    (
        DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE,
        DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_ENVELOPE,
        DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT,
        DeadLetterCause.DEAD_LETTER_CAUSE_IDENTIFYING_CONTENT,
        DeadLetterCause.DEAD_LETTER_CAUSE_NO_CONSENT,
    )
)


def publisher_of(letter: MessageDeadLettered) -> str | None:
    """The partner who published the set-aside event, from its original ce_source."""
    source = letter.original_headers.get(env.H_SOURCE, b"").decode(errors="replace")
    if not source.startswith(PARTNER_SOURCE):
        return None
    partner_id = source.removeprefix(PARTNER_SOURCE)
    return partner_id if PARTNER_ID.fullmatch(partner_id) else None


def for_partner(letter: MessageDeadLettered) -> MessageDeadLettered:
    """The letter the partner is given: its own record, and why the service refused it."""
    told = MessageDeadLettered()
    told.CopyFrom(letter)
    if letter.cause in EVENT_FAULTS:
        told.reason = f"refused by {letter.consumer}: {letter.reason}"
    else:
        told.reason = (
            f"{letter.consumer} could not process it (a fault on the platform, not in the "
            "event; operations are alerted): send it again later"
        )
    return told


async def report_refusal(event: Event, tx: Tx, *, directory: PartnerDirectory) -> None:
    """Copy a service's dead letter to the partner who published the event, if one did."""
    letter: MessageDeadLettered = event.message
    partner_id = publisher_of(letter)
    if partner_id is None:
        return
    await directory.ready.wait()
    # A removed partner's topics may be deleted by hand: writing there would fail the batch.
    if directory.active(partner_id) is None:
        log.warning("refusal.unreported", consumer=letter.consumer, reason="partner not active")
        return
    told = for_partner(letter)
    key = (event.key or "").encode() or None
    tx.send(
        OutRecord(
            dead_letter_topic(partner_id),
            key,
            told.SerializeToString(),
            env.to_headers(event.envelope),
        )
    )
    tx.count(REFUSALS_REPORTED.labels(partner_id, letter.consumer))
    log.info("refusal.reported", consumer=letter.consumer, source_topic=letter.source_topic)
