"""Replaying a partner's feed from a date, on the partitions this instance holds.

Each source partition is read from the first offset at or after the date to its end at
the start of the replay; an event goes to the partner's feed when a grant covers it (it
stood when the event happened, or covers from a date before it) and consent stands now
(ConsentBook.allows) and the owning service's stateless rules accept it (domain_rules),
as in the live feed; each copy carries the replay's id (header
emeuse_replay, the envelope's replay_id). A replay for one patient reads only the
patient's partition: a backfill after a new consent. The
consents of a partition's patients are in this instance's table: the same partition.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from emeuse.kernel.edge import Publisher
from emeuse.partners import feed_topic
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.registry import UnknownTopicError, by_name
from emeuse.runtime import envelope as env
from emeuse.runtime import kafka_clients
from emeuse.runtime.codec import InvalidEventError, check_event, check_partition, decode
from services.gateway.directory import own_event_withheld
from services.gateway.domain.consent import ConsentBook
from services.gateway.domain_rules import RuleBroken, check_domain_rules
from services.gateway.metrics import INVALID_WITHHELD


async def replay_partitions(
    *,
    bus: Publisher,
    bootstrap: str,
    partner: PartnerRegistered,
    since: datetime,
    partitions: list[TopicPartition],
    consents: Callable[[str], ConsentBook],
    replay_id: str,
    patient: str = "",
    delivered: set[str] | None = None,
) -> tuple[int, int]:
    """(sent, withheld) for the given source partitions (of one patient's events, when
    `patient` is given); the pseudonyms of the persons whose events were sent are added to
    `delivered` as they are sent (for the audit trail, even when the replay fails later)."""
    if not partitions:
        return 0, 0
    # Read committed, as the live feed: an event of an aborted transaction never happened.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka_clients.client_options(),
    )
    await consumer.start()
    sent = withheld = 0
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times(
            {tp: int(since.timestamp() * 1000) for tp in partitions}
        )
        todo = {}
        for tp in partitions:
            found = starts.get(tp)
            if found is None or found.offset >= ends[tp]:
                continue  # nothing since that date on this partition
            consumer.seek(tp, found.offset)
            todo[tp] = ends[tp]
        while todo:
            batches = await consumer.getmany(*todo, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= todo.get(tp, -1):
                        continue
                    verdict, subject = _verdict(partner, record, since, consents, patient)
                    if verdict is None:
                        continue
                    if not verdict:
                        withheld += 1
                        continue
                    # Marked: the SDK gives it as the envelope's replay_id.
                    headers = [*list(record.headers or ()), (env.H_REPLAY, replay_id.encode())]
                    await bus.forward(
                        feed_topic(partner.partner_id), record.key, record.value, headers
                    )
                    sent += 1
                    if delivered is not None:
                        delivered.add(subject)
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp]:
                    del todo[tp]
    finally:
        await consumer.stop()
    return sent, withheld


def _share(
    partner: PartnerRegistered,
    record: object,
    since: datetime,
    consents: Callable[[str], ConsentBook],
    patient: str = "",
) -> bool | None:
    """None: not for this partner (type, date, another patient, its own event withheld,
    unreadable); else whether consent allows it."""
    return _verdict(partner, record, since, consents, patient)[0]


def _verdict(
    partner: PartnerRegistered,
    record: object,
    since: datetime,
    consents: Callable[[str], ConsentBook],
    patient: str = "",
) -> tuple[bool | None, str]:
    """_share's answer, with the pseudonym of the person the event is about."""
    try:
        envelope = env.from_headers(env.header_map(list(record.headers or ())))  # type: ignore[attr-defined]
        if envelope.event_type not in partner.readable_event_types:
            return None, ""
        if patient and envelope.subject_pseudonym != patient:
            return None, ""
        if own_event_withheld(partner, envelope.source):
            return None, ""
        # The checks of the live feed: a record the platform would set aside is not sent.
        spec = by_name(record.topic)  # type: ignore[attr-defined]
        raw_key: bytes | None = record.key  # type: ignore[attr-defined]
        message = decode(spec, record.value)  # type: ignore[attr-defined]
        check_event(spec, envelope, message, raw_key.decode() if raw_key is not None else None)
        check_partition(spec, raw_key, record.partition, message)  # type: ignore[attr-defined]
        check_domain_rules(spec, message)
    except RuleBroken as broken:
        INVALID_WITHHELD.labels(spec.type_name, broken.rule).inc()
        return None, ""
    except (env.EnvelopeError, InvalidEventError, UnknownTopicError, UnicodeDecodeError):
        return None, ""
    happened = envelope.occurred_at.ToDatetime(tzinfo=since.tzinfo)
    if happened < since:
        return None, ""
    subject = envelope.subject_pseudonym
    return consents(subject).allows(partner.partner_id, list(partner.purposes), happened), subject
