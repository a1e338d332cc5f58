"""The consent-filtered fan-out; the kernel runs it (emeuse.kernel).

The consents and every patient-keyed event topic share the patient's partition, so a
patient's consents and events are handled in order, each exactly once: a withdrawal
applies to every event handled after it. An event its owning service's stateless rules
refuse (domain_rules) goes to no feed. Any other goes to each partner's feed as it is
(the platform's envelope) inside the transaction that commits its offset, so a feed gets
it once, and never an event whose transaction was aborted (partners read committed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import structlog

from emeuse.kernel.declare import Handler, Processor, TableSpec
from emeuse.kernel.outputs import OutRecord
from emeuse.kernel.tx import Tx
from emeuse.partners import feed_topic
from emeuse.partners.v1.partners_pb2 import EventShared
from emeuse.registry import CONSENT_CHANGED, EVENT_SHARED, TopicSpec
from emeuse.runtime import envelope as env
from emeuse.runtime.events import Event
from services.gateway.consent_follower import apply_change
from services.gateway.directory import PartnerDirectory, own_event_withheld
from services.gateway.domain.consent import ConsentBook
from services.gateway.domain_rules import RuleBroken, check_domain_rules
from services.gateway.metrics import CONSENT_APPLIED, FORWARDED, INVALID_WITHHELD, WITHHELD
from services.gateway.refusals import report_refusal
from services.gateway.topics import refusal_topics, source_topics

log = structlog.get_logger("emeuse.gateway")
CONSENTS = "patient_to_consents"


async def apply_consent(event: Event, tx: Tx) -> None:
    change = event.message
    patient = change.patient_pseudonym
    book = ConsentBook.from_json(tx.get(CONSENTS, patient))
    changed_at = change.changed_at.ToDatetime(tzinfo=UTC)
    if apply_change(book, change):
        tx.put(CONSENTS, patient, book.to_json())
    tx.observe(CONSENT_APPLIED, max((datetime.now(UTC) - changed_at).total_seconds(), 0.0))
    log.info("consent.applied", granted=change.granted)


async def share(event: Event, tx: Tx, *, directory: PartnerDirectory, spec: TopicSpec) -> None:
    """Pass the event to the feed of every partner that may read it under a consent that
    stood when it happened and stands now, unless its owning service's rules refuse it."""
    # Not before the registry is read: an event skipped for a partner not loaded yet would
    # be lost to it. (Handlers run before the batch's transaction begins.)
    await directory.ready.wait()
    event_type = event.envelope.event_type
    readers = directory.readers_of(event_type)
    if not readers:
        return
    if not follows_rules(event, tx, spec):
        return
    book = ConsentBook.from_json(tx.get(CONSENTS, event.envelope.subject_pseudonym))
    happened = event.envelope.occurred_at.ToDatetime(tzinfo=UTC)
    value = event.message.SerializeToString()
    headers = env.to_headers(event.envelope)
    given: list[str] = []
    for partner in readers:
        if own_event_withheld(partner, event.envelope.source):
            continue
        if not book.allows(partner.partner_id, list(partner.purposes), happened):
            tx.count(WITHHELD.labels(partner.partner_id, event_type))
            continue
        key = (event.key or "").encode() or None
        tx.send(OutRecord(feed_topic(partner.partner_id), key, value, headers))
        tx.count(FORWARDED.labels(partner.partner_id, event_type))
        given.append(partner.partner_id)
    if given:
        record_shared(event, given, tx)


def follows_rules(event: Event, tx: Tx, spec: TopicSpec) -> bool:
    """Whether the owning service's stateless rules accept the event. One they refuse is
    withheld from every feed and counted, not dead-lettered: the owner sets it aside on its
    own dead letters, and a second letter here would report it twice."""
    try:
        check_domain_rules(spec, event.message)
    except RuleBroken as broken:
        tx.count(INVALID_WITHHELD.labels(spec.type_name, broken.rule))
        log.info("event.invalid_withheld", type=spec.type_name, rule=broken.rule)
        return False
    return True


def record_shared(event: Event, partners: list[str], tx: Tx) -> None:
    """Say on the bus which feeds got the event, in the same transaction: the evaluation
    counts what each partner consumed from it. Dated when the event happened, with its
    experiment and territory, so it counts in the event's own cell."""
    patient = event.envelope.subject_pseudonym
    shared = EventShared(
        patient_pseudonym=patient,
        event_id=event.envelope.event_id,
        event_type=event.envelope.event_type,
        partner_ids=partners,
        shared_at=env.timestamp(datetime.now(UTC)),
    )
    tx.publish(
        EVENT_SHARED,
        shared,
        key=patient,
        subject_pseudonym=patient,
        occurred_at=event.envelope.occurred_at.ToDatetime(tzinfo=UTC),
        cause=event.envelope,
    )


def processor(directory: PartnerDirectory) -> Processor:
    """The gateway's declaration, given the partner directory it reads."""
    inputs: dict[TopicSpec, Handler] = {CONSENT_CHANGED: apply_consent}
    for spec in source_topics():
        inputs[spec] = partial(share, directory=directory, spec=spec)
    for spec in refusal_topics():
        inputs[spec] = partial(report_refusal, directory=directory)
    return Processor(
        service="gateway",
        inputs=inputs,
        tables=(TableSpec(CONSENTS, "Consents with their history (domain.consent.ConsentBook)."),),
    )
