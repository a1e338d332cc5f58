"""Publishing from a gRPC call: events a caller asks for, outside any transaction.

Inside a handler the same `publish` adds the event to the running transaction, so code
shared by both sides publishes the right way in each.
"""

from __future__ import annotations

from typing import Unpack

import structlog
from aiokafka import AIOKafkaProducer
from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.kernel.outputs import EventFields, Origin, OutRecord, event_record
from emeuse.kernel.tx import current_tx
from emeuse.registry import TopicSpec
from emeuse.runtime import envelope as env
from emeuse.runtime import metrics
from emeuse.runtime.settings import ServiceSettings

log = structlog.get_logger("emeuse.bus")


class Publisher:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.origin = Origin(settings.service, settings.source, settings.experiment_id)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=list(self.settings.kafka_bootstrap),
            **self.settings.kafka_options(),
            client_id=f"{self.settings.app_id}-edge",
            enable_idempotence=True,
            acks="all",
            linger_ms=1,
            request_timeout_ms=int(self.settings.grpc_deadline_seconds * 1000) + 5000,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(
        self,
        spec: TopicSpec,
        message: Message,
        **fields: Unpack[EventFields],
    ) -> EventEnvelope:
        """Publish one event: in the running transaction inside a handler; else now, and
        return once the broker has it."""
        tx = current_tx()
        if tx is not None:
            return tx.publish(spec, message, **fields)
        record, envelope = event_record(self.origin, spec, message, **fields)
        await self.send(record)
        metrics.EVENTS_PRODUCED.labels(self.settings.service, spec.name, spec.type_name).inc()
        log.info("event.published", topic=spec.name, published_event_id=envelope.event_id)
        return envelope

    async def send(self, record: OutRecord) -> None:
        tx = current_tx()
        if tx is not None:
            tx.send(record)
            return
        assert self._producer is not None, "Publisher.start() first"
        await self._producer.send_and_wait(
            record.topic,
            value=record.value,
            key=record.key,
            partition=record.partition,
            headers=record.headers,
        )

    async def forward(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: env.Headers,
        partition: int | None = None,
    ) -> None:
        """Send a record as it is (an event passed on to or from a partner)."""
        await self.send(OutRecord(topic, key, value, headers, partition))
