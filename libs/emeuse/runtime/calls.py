"""What every gRPC servicer does around a call: publish for the caller, wait until applied,
check a pseudonym. No stream framework here: servicers of any runtime use it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar, Unpack

import grpc
from aiokafka.errors import KafkaError
from google.protobuf.message import Message

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.kernel.outputs import EventFields
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import TopicSpec
from emeuse.runtime.pseudonym import is_pseudonym

T = TypeVar("T")
CALL_NAMESPACE = uuid.UUID("ca11ed00-e5e0-4d5e-9a11-000000000018")


class Publishes(Protocol):
    """The kernel's Publisher (or a test's fake)."""

    async def publish(
        self,
        spec: TopicSpec,
        message: Message,
        **fields: Unpack[EventFields],
    ) -> EventEnvelope: ...


async def publish_for_caller(
    context: grpc.aio.ServicerContext,
    bus: Publishes,
    spec: TopicSpec,
    message: Message,
    *,
    key: str,
    subject: str,
    territory: Territory.ValueType,
    experiment: str | None = None,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> str:
    """Publish an event a gRPC call asked for and return its id; a broker that does not
    take it answers the call UNAVAILABLE. `event_id`, derived from what the call names
    (e.g. the reading reviewed), makes a repeated call publish and answer the same id."""
    try:
        envelope = await bus.publish(
            spec,
            message,
            key=key,
            subject_pseudonym=subject,
            occurred_at=occurred_at or datetime.now(UTC),
            territory=territory,
            experiment_id=experiment or None,
            event_id=event_id,
        )
    except KafkaError as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"the bus did not take it: {exc}")
        raise
    return envelope.event_id


def call_event_id(*parts: str) -> str:
    """The id of the event a write call publishes, derived from what the call names, so
    that the same call asked again (a lost answer) carries and answers the same id."""
    return str(uuid.uuid5(CALL_NAMESPACE, "/".join(parts)))


async def until_applied(
    context: grpc.aio.ServicerContext,
    applied: Callable[[], T | None],
    seconds: float,
    hint: str = "ask again shortly",
) -> T:
    """For a write a service's handler applies: poll the committed tables until `applied()`
    gives something, within `seconds`; else DEADLINE_EXCEEDED (accepted, not applied)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        found = applied()
        if found:
            return found
        await asyncio.sleep(0.05)
    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"accepted but not applied yet; {hint}")
    raise AssertionError("abort raises")


async def require_pseudonym(context: grpc.aio.ServicerContext, value: str, field: str) -> None:
    """Abort the call with INVALID_ARGUMENT unless `value` is a platform pseudonym."""
    if not is_pseudonym(value):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"{field} must be a platform pseudonym (psn-...)"
        )
