"""Creating topics before any worker starts, with the partition counts faust expects.

faust declares its own changelog topics at start, but a failed declaration is only
logged ("Ignoring missing topic") and the first table write then fails with
PartitionsMismatch. So the runtime creates them itself first, like the registry topics.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

import faust
from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: Mapping[str, str]


class TopicError(RuntimeError):
    """A topic that cannot be created, or exists with another partition count."""


def ensure_topics(
    bootstrap: str, plans: list[TopicPlan], replication_factor: int, timeout_s: float = 10.0
) -> list[tuple[str, str]]:
    """Create the missing topics; returns (name, "created" | "exists") in plan order."""
    ms = int(timeout_s * 1000)
    try:
        client = KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","),
            client_id="emeuse-topics",
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
        )
    except KafkaError as exc:
        raise TopicError(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from None
    try:
        existing = {t["name"]: len(t["partitions"]) for t in client.describe_topics()}
        missing = {
            plan.name: {
                "num_partitions": plan.partitions,
                "replication_factor": replication_factor,
                "configs": dict(plan.config),
            }
            for plan in plans
            if plan.name not in existing
        }
        if missing:
            # Another instance may create one meanwhile: that is success too.
            with suppress(TopicAlreadyExistsError):
                client.create_topics(missing, wait_for_metadata=True)
    except KafkaError as exc:
        raise TopicError(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    report = []
    for plan in plans:
        if plan.name in missing:
            report.append((plan.name, "created"))
        elif existing[plan.name] != plan.partitions:
            raise TopicError(
                f"topic {plan.name} has {existing[plan.name]} partitions, {plan.partitions} "
                "expected; recreate it or declare a new topic version"
            )
        else:
            report.append((plan.name, "exists"))
    return report


def changelog_plans(app: faust.App) -> list[TopicPlan]:
    """The app's table changelogs (compacted) and faust's assignor leader topic."""
    plans = [
        TopicPlan(
            table.changelog_topic.get_topic_name(), table.partitions, {"cleanup.policy": "compact"}
        )
        for table in app.tables.values()
    ]
    plans.append(TopicPlan(f"{app.conf.id}-__assignor-__leader", 1, {"cleanup.policy": "delete"}))
    return plans
