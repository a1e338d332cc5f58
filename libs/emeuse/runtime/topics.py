"""Creating topics with the partition counts and configuration they are declared with.

The registry's topics are created by `emeuse topics create`, each service's changelog by the
kernel at start; a topic that exists with another partition count is an error, never
silently used (a key would move to another partition).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from emeuse.runtime import kafka_clients
from emeuse.runtime.security import KafkaLogin


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: Mapping[str, str]


class TopicError(RuntimeError):
    """A topic that cannot be created, or exists with another partition count."""


class TopicsNotReady(TopicError):
    """Topics missing, or a broker that does not answer yet: waiting may mend it."""


def ensure_topics(
    bootstrap: str,
    plans: list[TopicPlan],
    replication_factor: int,
    timeout_s: float = 10.0,
    *,
    create: bool = True,
    login: KafkaLogin | None = None,
) -> list[tuple[str, str]]:
    """Create the missing topics; returns (name, "created" | "exists") in plan order.

    With create=False a missing topic is TopicsNotReady (someone else creates it). `login`
    defaults to the process's (kafka_clients.use)."""
    ms = int(timeout_s * 1000)
    try:
        client = KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","),
            **kafka_clients.client_options(login),
            client_id="emeuse-topics",
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
        )
    except KafkaError as exc:
        raise TopicsNotReady(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from None
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
        if missing and not create:
            raise TopicsNotReady(
                f"topics missing: {', '.join(sorted(missing))} (`emeuse topics create`)"
            )
        if missing:
            # Another instance may create one meanwhile: that is success too.
            with suppress(TopicAlreadyExistsError):
                client.create_topics(missing, wait_for_metadata=True)
    except KafkaError as exc:
        raise TopicsNotReady(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from None
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
