"""Building valid input records for the integration tests, as a partner would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from emeuse.place.v1.territory_pb2 import Territory
from emeuse.registry import TopicSpec, UnknownTopicError, by_name
from emeuse.runtime import envelope as env
from emeuse.runtime.codec import expected_partition


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


# What every care plan needs besides its thresholds (see services/chronic/care_plan.py).
CARE_TEAM = [
    {"member_id": "gp-0042", "role": "CARE_ROLE_GP", "escalation_rank": 1},
    {"member_id": "ide-0107", "role": "CARE_ROLE_NURSE", "escalation_rank": 2},
]


def plan_json(patient: str, plan_id: str, programme: str, *bands: dict) -> dict:
    """A complete care plan in proto3 JSON: each band expected daily, 30 min to acknowledge."""
    return {
        "patient_pseudonym": patient,
        "care_plan_id": plan_id,
        "programme": f"MONITORING_PROGRAMME_{programme}",
        "thresholds": [{"expected_every": "86400s", **band} for band in bands],
        "care_team": CARE_TEAM,
        "acknowledge_within": "1800s",
    }


def complete_plan(plan: Message, programme: str) -> Message:
    """The same plan as a message, completed like plan_json."""
    bands = [
        json_format.MessageToDict(band, preserving_proto_field_name=True)
        for band in plan.thresholds
    ]
    data = plan_json(plan.patient_pseudonym, plan.care_plan_id, programme, *bands)
    return json_format.ParseDict(data, type(plan)())


def partition_for(topic: str, key: bytes | None, value: bytes) -> int | None:
    """Where a producer of the platform puts a record of a topic partitioned by a field (the
    access agenda's inputs: by "agenda-<territory>"); None: the default partitioner's."""
    try:
        spec = by_name(topic)
        message = spec.message.FromString(value) if spec.partition_by else None
    except (UnknownTopicError, DecodeError):
        return None  # not a platform event (a poison record): wherever the key puts it
    hashed = spec.partition_key(key, message)
    return None if hashed is None else expected_partition(hashed, spec.partitions)
