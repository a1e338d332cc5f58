"""The audit trail: who read or changed a person's data through gRPC, and with what outcome.

The Guard (grpc_server.py) hands each answered call that touched a person to `AuditTrail`,
which returns at once: records wait in memory and a background task sends them in batches,
so a call never waits for the audit topic. A record that cannot be written is counted
(`emeuse_audit_records_failed_total`) and logged, never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaProducer
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from emeuse.audit.v1.audit_events_pb2 import AuditAction, PatientDataAccessed
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import PATIENT_DATA_ACCESSED
from emeuse.runtime import envelope as env
from emeuse.runtime import metrics
from emeuse.runtime.pseudonym import is_pseudonym
from emeuse.runtime.roles import purpose_of_use
from emeuse.runtime.settings import ServiceSettings

log = structlog.get_logger("emeuse.audit")
# Persons named by one call that get a record each (a list's page holds at most 100).
MAX_SUBJECTS = 100
# Records waiting to be sent; beyond this a record is counted as failed (`full`).
MAX_WAITING = 50_000
BATCH = 500
FLUSH_EVERY_S = 0.2
# How long a stopping service waits for the records still waiting to be sent.
STOP_WAIT_S = 10.0
# How deep into a message pseudonyms are looked for (a reading in a request, an alert in a page).
MAX_DEPTH = 4

Send = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]


def subjects_of(message: Message | None) -> list[str]:
    """The distinct pseudonyms a request or response names, in order (at most MAX_SUBJECTS)."""
    found: dict[str, None] = {}
    if message is not None:
        _collect(message, found, MAX_DEPTH)
    return list(found)[:MAX_SUBJECTS]


def _collect(message: Message, found: dict[str, None], depth: int) -> None:
    for field, value in message.ListFields():
        if len(found) >= MAX_SUBJECTS:
            return
        if field.type == field.TYPE_STRING and field.name.endswith("pseudonym"):
            values: Iterable[str] = value if _repeated(field) else [value]
            found.update((v, None) for v in values if is_pseudonym(v))
        elif field.type == field.TYPE_MESSAGE and depth > 0:
            if field.message_type is None or field.message_type.GetOptions().map_entry:
                continue
            for item in value if _repeated(field) else [value]:
                _collect(item, found, depth - 1)


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def access_records(
    *,
    service: str,
    method: str,
    caller_id: str,
    role: str,
    write: bool,
    subjects: list[str],
    outcome: str,
    refusal_reason: str = "",
    answered_at: datetime | None = None,
    call_id: str = "",
) -> list[PatientDataAccessed]:
    """One record per person the call touched, sharing the call's id (a new one unless
    given), with the purpose of use of the caller's role."""
    call_id = call_id or str(uuid.uuid4())
    purpose = purpose_of_use(role)
    records = []
    for subject in subjects:
        record = PatientDataAccessed(
            call_id=call_id,
            caller_id=caller_id,
            caller_role=role,
            service=service,
            method=method,
            action=AuditAction.AUDIT_ACTION_WRITE if write else AuditAction.AUDIT_ACTION_READ,
            subject_pseudonym=subject,
            outcome=outcome,
            refusal_reason=refusal_reason,
            purpose_of_event=purpose,
        )
        record.answered_at.FromDatetime(answered_at or datetime.now(UTC))
        records.append(record)
    return records


class AuditTrail:
    """Batched, non-blocking writer of the audit topic for one service."""

    def __init__(self, settings: ServiceSettings, send: Send | None = None) -> None:
        self.settings = settings
        self._send = send
        self._producer: AIOKafkaProducer | None = None
        self._waiting: deque[PatientDataAccessed] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sending = 0  # records of the batch being sent

    async def start(self) -> None:
        if self._send is None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=list(self.settings.kafka_bootstrap),
                **self.settings.kafka_options(),
                client_id=f"{self.settings.app_id}-audit",
                enable_idempotence=True,
                acks="all",
                linger_ms=20,
            )
            await self._producer.start()
        self._task = asyncio.create_task(self._run())

    def record(self, records: Iterable[PatientDataAccessed]) -> None:
        """Queue records; returns at once."""
        for record in records:
            if len(self._waiting) >= MAX_WAITING:
                self._failed("full", 1)
                continue
            self._waiting.append(record)
        if len(self._waiting) >= BATCH:
            self._wake.set()

    async def record_paced(self, records: Iterable[PatientDataAccessed]) -> None:
        """Queue many records (a replay's deliveries, one per person) a batch at a time,
        waiting while the queue is more than half full, so that they never leave the
        calls' own records without room."""
        pending = iter(records)
        batch: list[PatientDataAccessed] = []
        try:
            while batch := list(itertools.islice(pending, BATCH)):
                while self._writing() and len(self._waiting) > MAX_WAITING // 2:
                    self._wake.set()
                    await asyncio.sleep(FLUSH_EVERY_S)
                self.record(batch)
                batch = []
        except asyncio.CancelledError:
            # What the cancelled caller still owed, the batch it held included: queued, or
            # counted as failed, never dropped.
            self.record(itertools.chain(batch, pending))
            raise

    def _writing(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Send what waits, then close."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, STOP_WAIT_S)
            except TimeoutError:
                # The broker does not answer: what is unsent is counted, not kept.
                unsent = len(self._waiting) + self._sending
                self._failed("send", unsent)
                log.error("audit.write_failed", records=unsent, error="stopping")
        if self._producer is not None:
            await self._producer.stop()

    async def _run(self) -> None:
        # Never cancelled: a batch taken from the queue is always sent or counted.
        while not self._stopping or self._waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_EVERY_S)
            self._wake.clear()
            while self._waiting:
                await self._flush()

    async def _flush(self) -> None:
        batch = [self._waiting.popleft() for _ in range(min(BATCH, len(self._waiting)))]
        self._sending = len(batch)
        results = await asyncio.gather(
            *(self._write(record) for record in batch), return_exceptions=True
        )
        self._sending = 0
        failed = sum(1 for result in results if isinstance(result, BaseException))
        if failed:
            self._failed("send", failed)
            first = next(r for r in results if isinstance(r, BaseException))
            log.error("audit.write_failed", records=failed, error=type(first).__name__)
        written = len(batch) - failed
        if written:
            metrics.AUDIT_RECORDS_WRITTEN.labels(self.settings.service).inc(written)

    async def _write(self, record: PatientDataAccessed) -> None:
        spec = PATIENT_DATA_ACCESSED
        envelope = env.new_envelope(
            event_type=spec.type_name,
            source=self.settings.source,
            subject_pseudonym=record.subject_pseudonym,
            territory=Territory.TERRITORY_UNSPECIFIED,
            experiment_id=self.settings.experiment_id,
            schema_version=spec.schema_version,
            occurred_at=record.answered_at.ToDatetime(tzinfo=UTC),
        )
        key = record.subject_pseudonym.encode()
        value = record.SerializeToString()
        headers = env.to_headers(envelope)
        if self._send is not None:
            await self._send(spec.name, key, value, headers)
            return
        assert self._producer is not None
        await self._producer.send_and_wait(spec.name, value=value, key=key, headers=headers)

    def _failed(self, reason: str, count: int) -> None:
        metrics.AUDIT_RECORDS_FAILED.labels(self.settings.service, reason).inc(count)
