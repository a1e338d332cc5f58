"""Gateway agents: the consent-filtered fan-out, and the partners' inbound events.

`fan_out` reads the consents and every patient-keyed event topic on one channel: a
patient's consents and events share a partition and are handled in order, so a
withdrawal applies to every event handled after it. The inbound loop follows the
partners' inbound topics (created at any time) with its own consumer group.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import faust
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from faust.types import TableT
from prometheus_client import Counter, Histogram

from emeuse.partners import dead_letter_topic, feed_topic
from emeuse.registry import CONSENT_CHANGED
from emeuse.runtime import envelope as env
from emeuse.runtime.bus import Event, RetryableError, read_failure
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.service import Runtime
from services.gateway.directory import PartnerDirectory
from services.gateway.domain.consent import ConsentBook
from services.gateway.inbound import admit, partner_of_inbound
from services.gateway.topics import INBOUND_PATTERN, source_topics

log = structlog.get_logger("emeuse.gateway")
FORWARDED = Counter(
    "emeuse_gateway_events_forwarded_total",
    "Events sent to a partner's feed, by partner and type.",
    ["partner", "type"],
)
WITHHELD = Counter(
    "emeuse_gateway_events_withheld_total",
    "Events of a type a partner may read, withheld: the patient's consent does not stand.",
    ["partner", "type"],
)
CONSENT_APPLIED = Histogram(
    "emeuse_gateway_consent_applied_seconds",
    "From a consent change (granted or withdrawn) to the gateway applying it to the feeds.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
INBOUND = Counter(
    "emeuse_gateway_inbound_total",
    "Events partners published: admitted to the platform, or refused to their dead letters.",
    ["partner", "outcome"],
)
INBOUND_GROUP = "emeuse-gateway-inbound"


def start_agents(rt: Runtime, consents: TableT, directory: PartnerDirectory) -> None:
    async def apply_consent(event: Event) -> None:
        change = event.message
        patient = change.patient_pseudonym
        book = ConsentBook.from_json(consents.get(patient))
        changed_at = change.changed_at.ToDatetime(tzinfo=UTC)
        if book.record(change.partner_id, change.purpose, changed_at, change.granted):
            consents[patient] = book.to_json()
        CONSENT_APPLIED.observe(max((datetime.now(UTC) - changed_at).total_seconds(), 0.0))
        log.info("consent.applied", granted=change.granted)

    async def share(event: Event) -> None:
        # Not before the registry is read: an event skipped for a partner not loaded yet
        # would be lost to it.
        await directory.ready.wait()
        event_type = event.envelope.event_type
        readers = directory.readers_of(event_type)
        if not readers:
            return
        book = ConsentBook.from_json(consents.get(event.envelope.subject_pseudonym))
        happened = event.envelope.occurred_at.ToDatetime(tzinfo=UTC)
        for partner in readers:
            if not book.allows(partner.partner_id, list(partner.purposes), happened):
                WITHHELD.labels(partner.partner_id, event_type).inc()
                continue
            try:
                await rt.bus.forward(
                    feed_topic(partner.partner_id),
                    (event.key or "").encode() or None,
                    event.message.SerializeToString(),
                    env.to_headers(event.envelope),
                )
            except KafkaError as exc:
                # Retried whole (partners already fed get it again, same ce_id), so no
                # partner loses the event for another's feed failing.
                raise RetryableError(f"feed of {partner.partner_id}: {exc}") from exc
            FORWARDED.labels(partner.partner_id, event_type).inc()

    sources = source_topics()

    @rt.app.agent(rt.bus.topics(CONSENT_CHANGED, *sources), name="fan_out")
    async def fan_out(records: faust.StreamT) -> None:
        await rt.bus.process_each(
            records, {CONSENT_CHANGED: apply_consent, **{spec: share for spec in sources}}
        )

    bootstrap = ",".join(rt.settings.kafka_bootstrap)

    @rt.app.task
    async def admit_inbound() -> None:
        while not rt.app.should_stop:
            try:
                await follow_inbound(rt, directory, bootstrap)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker blip: start again
                log.error("inbound.failed", error=type(exc).__name__)
                await asyncio.sleep(1.0)


async def follow_inbound(rt: Runtime, directory: PartnerDirectory, bootstrap: str) -> None:
    """Admit or refuse each record of every partner's inbound topic, at least once."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=INBOUND_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # A new partner's inbound topic is found within seconds.
        metadata_max_age_ms=3000,
    )
    consumer.subscribe(pattern=INBOUND_PATTERN)
    await consumer.start()
    try:
        await directory.ready.wait()
        while not rt.app.should_stop:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    await admit_one(rt, directory, record)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


async def admit_one(rt: Runtime, directory: PartnerDirectory, record: object) -> None:
    topic: str = record.topic  # type: ignore[attr-defined]
    partner_id = partner_of_inbound(topic)
    raw_headers = list(record.headers or ())  # type: ignore[attr-defined]
    headers = env.header_map(raw_headers)
    raw_key: bytes | None = record.key  # type: ignore[attr-defined]
    key = raw_key.decode(errors="replace") if raw_key is not None else None
    value: bytes | None = record.value  # type: ignore[attr-defined]
    try:
        envelope = env.from_headers(headers)
        admitted = admit(
            partner_id, directory.active(partner_id), envelope, value, key, datetime.now(UTC)
        )
    except Exception as exc:  # whatever a partner's bytes provoke: set aside, go on
        cause, reason = read_failure(exc)
        await rt.bus.dead_letter_raw(
            topic=topic,
            partition=record.partition,  # type: ignore[attr-defined]
            offset=record.offset,  # type: ignore[attr-defined]
            key=raw_key,
            value=value,
            headers=headers,
            cause=cause,
            reason=reason,
            to_topic=dead_letter_topic(partner_id),
        )
        INBOUND.labels(partner_id, "refused").inc()
        return
    spec = admitted.spec
    hashed = spec.partition_key(raw_key, admitted.message)
    await rt.bus.forward(
        spec.name,
        raw_key,
        value or b"",
        env.to_headers(admitted.envelope),
        partition=expected_partition(hashed, spec.partitions) if hashed is not None else None,
    )
    INBOUND.labels(partner_id, "admitted").inc()
    log.info("inbound.admitted", event_id=admitted.envelope.event_id, topic=spec.name)
