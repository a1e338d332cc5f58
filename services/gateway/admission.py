"""The partners' inbound events: checked (inbound.admit, then the owning service's domain
rules: domain_rules, then the consent of the person the event is about: inbound.consented),
then passed on to the platform's topic, or set aside on the partner's own dead letters with
the reason; nothing refused reaches the platform's topic, so no feed.

Consent is the one every instance follows from the bus (consent_follower); each batch is
checked only once every consent change committed before it was taken is applied.

Not a kernel input: a partner's inbound topic is created at any time and found by name
pattern, which a co-partitioned set of inputs cannot follow. A consumer of its own group
reads them at least once (a record admitted twice keeps its ce_id: consumers dedupe on it)
and commits after each batch is sent.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, IllegalStateError

from emeuse.kernel.edge import Publisher
from emeuse.kernel.outputs import SetAside, dead_letter_record
from emeuse.partners import dead_letter_topic
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause
from emeuse.registry import dead_letter_topic as service_dead_letters
from emeuse.runtime import envelope as env
from emeuse.runtime import kafka_clients, metrics
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.events import read_failure
from services.gateway.consent_follower import FollowedConsents
from services.gateway.directory import PartnerDirectory
from services.gateway.domain_rules import check_domain_rules
from services.gateway.inbound import admit, consented, partner_of_inbound
from services.gateway.metrics import INBOUND
from services.gateway.topics import INBOUND_GROUP, INBOUND_PATTERN

log = structlog.get_logger("emeuse.gateway")
# How long a batch waits for the consents to be read up to date before the loop starts
# again (nothing committed: the batch is read again).
CONSENTS_WITHIN_S = 10.0


async def keep_admitting(
    bus: Publisher, directory: PartnerDirectory, consents: FollowedConsents, bootstrap: str
) -> None:
    """Admit the partners' inbound events until cancelled, started again after a failure."""
    while True:
        try:
            await follow_inbound(bus, directory, consents, bootstrap)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broker blip: start again
            log.error("inbound.failed", error=type(exc).__name__)
            await asyncio.sleep(1.0)


async def follow_inbound(
    bus: Publisher, directory: PartnerDirectory, consents: FollowedConsents, bootstrap: str
) -> None:
    """Admit or refuse each record of every partner's inbound topic, at least once."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **kafka_clients.client_options(),
        group_id=INBOUND_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        # A new partner's inbound topic is found within seconds.
        metadata_max_age_ms=3000,
    )
    consumer.subscribe(pattern=INBOUND_PATTERN)
    await consumer.start()
    try:
        await directory.ready.wait()
        await consents.ready.wait()
        while True:
            await admit_batch(consumer, bus, directory, consents)
    finally:
        await consumer.stop()


async def admit_batch(
    consumer: AIOKafkaConsumer,
    bus: Publisher,
    directory: PartnerDirectory,
    consents: FollowedConsents,
) -> None:
    """One poll's records admitted or refused, then committed."""
    batches = await consumer.getmany(timeout_ms=500)
    if not batches:
        return
    await consents.seen_up_to_now(CONSENTS_WITHIN_S)
    for records in batches.values():
        for record in records:
            await admit_one(bus, directory, consents, record)
    try:
        await consumer.commit()
    except (CommitFailedError, IllegalStateError) as exc:
        # A rebalance under way (each new partner's inbound topic joins the pattern): the
        # batch stays uncommitted and is handled again by whoever gets its partitions (at
        # least once, ce_id kept). The consumer rejoins at its next poll; starting it anew
        # (a second's pause, a fresh join) kept every partner's refusals waiting 1-2 s.
        log.info("inbound.commit_skipped", error=type(exc).__name__)


async def admit_one(
    bus: Publisher, directory: PartnerDirectory, consents: FollowedConsents, record: Any
) -> None:
    topic: str = record.topic
    partner_id = partner_of_inbound(topic)
    headers = env.header_map(list(record.headers or ()))
    raw_key: bytes | None = record.key
    key = raw_key.decode(errors="replace") if raw_key is not None else None
    value: bytes | None = record.value
    try:
        envelope = env.from_headers(headers)
        partner = directory.active(partner_id)
        admitted = admit(partner_id, partner, envelope, value, key, datetime.now(UTC))
        check_domain_rules(admitted.spec, admitted.message)
        assert partner is not None  # admit refuses an unknown partner
        consented(partner, admitted, consents.book)
    except Exception as exc:  # whatever a partner's bytes provoke: set aside, go on
        await refuse(bus, record, *read_failure(exc), to_topic=dead_letter_topic(partner_id))
        INBOUND.labels(partner_id, "refused").inc()
        return
    spec = admitted.spec
    hashed = spec.partition_key(raw_key, admitted.message)
    await bus.forward(
        spec.name,
        raw_key,
        value or b"",
        env.to_headers(admitted.envelope),
        partition=expected_partition(hashed, spec.partitions) if hashed is not None else None,
    )
    INBOUND.labels(partner_id, "admitted").inc()
    log.info("inbound.admitted", event_id=admitted.envelope.event_id, topic=spec.name)


async def refuse(bus: Publisher, record: Any, cause: int, reason: str, *, to_topic: str) -> None:
    """Set a partner's record aside, with its reason and place, on the partner's own dead
    letters (the partner reads them)."""
    aside = SetAside(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
        cause=cause,
        reason=reason,
    )
    service = bus.settings.service
    await bus.send(
        dead_letter_record(bus.origin, service_dead_letters(service), aside, topic=to_topic)
    )
    cause_name = DeadLetterCause.Name(cause)  # type: ignore[arg-type]
    metrics.EVENTS_FAILED.labels(service, record.topic, "unknown", cause_name).inc()
    metrics.EVENTS_DEAD_LETTERED.labels(service, record.topic).inc()
    log.warning(
        "event.dead_lettered",
        cause=cause_name,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
    )
