"""Building valid input records for the integration tests, as a partner would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.message import Message

from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import TopicSpec
from emeuse.runtime import envelope as env


def headers_for(
    spec: TopicSpec, subject: str, territory: int = Territory.TERRITORY_MEUSE
) -> list[tuple[str, bytes]]:
    envelope = env.new_envelope(
        event_type=spec.type_name,
        source="partner/integration-tests",
        subject_pseudonym=subject,
        territory=territory,
        experiment_id="integration-tests",
        schema_version=spec.schema_version,
        occurred_at=datetime.now(UTC),
    )
    return env.to_headers(envelope)


def record(
    spec: TopicSpec, message: Message, subject: str
) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    return spec.name, subject.encode(), message.SerializeToString(), headers_for(spec, subject)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"
