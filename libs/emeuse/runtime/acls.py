"""Each platform user's Kafka ACLs, in one place: a service's from what it declares
(`services/<svc>/topics.py`: KAFKA), the operators' tools' from their duties.

Used by `python -m emeuse.cli.platform_users` (the local broker, deploy/kafka/kafka.sh) and
by `emeuse deploy render` (a KafkaUser each, deploy/k8s), so both grant the same. A service
may:
- read and describe its kernel inputs and the directories it follows;
- write and describe what it publishes, its dead letters and the audit trail;
- read, write and create its own internal topics, use its own consumer groups and its own
  transactional ids: all named `emeuse-<svc>` or `emeuse-<svc>-…` (the default app id
  is `emeuse-<svc>`; its changelog `<app id>-state-changelog`, its transactional ids
  `<app id>-<partition>`), so a second app id such as `emeuse-chronic-blue` keeps working;
- write idempotently on the cluster.
Nothing else: not another service's topics, not the audit trail's records, not ACLs.
The auditors' user reads the audit trail alone; the tools' holds what their commands do.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from emeuse.partners import TOPIC_PREFIX as PARTNER_TOPICS
from emeuse.registry import PATIENT_DATA_ACCESSED, SERVICES, TopicSpec, dead_letter_topic
from emeuse.runtime.security import AUDITOR, TOOLS

# Kafka's resource types and operations, spelt as Strimzi's KafkaUser spells them.
TOPIC, GROUP, TRANSACTIONAL_ID, CLUSTER = "topic", "group", "transactionalId", "cluster"
LITERAL, PREFIX = "literal", "prefix"
READ = ("Read", "Describe")
WRITE = ("Write", "Describe")
INTERNAL = ("Read", "Write", "Create", "Describe")


@dataclass(frozen=True)
class KafkaUse:
    """What a service does on the bus, declared beside its processing (topics.py)."""

    service: str
    # The kernel's inputs: exactly the keys of processing.py's Processor.inputs.
    reads: tuple[TopicSpec, ...]
    # What its handlers and gRPC calls publish (dead letters and the audit trail aside).
    writes: tuple[TopicSpec, ...] = ()
    # Directories every instance reads whole outside the kernel (emeuse.runtime.follower).
    follows: tuple[TopicSpec, ...] = ()
    # The gateway: every partner's feed (written), inbound (read) and dead letters (written).
    partner_topics: bool = False


@dataclass(frozen=True, order=True)
class Grant:
    """Operations allowed a user on one resource (a name, or every name with a prefix)."""

    resource: str
    name: str
    pattern: str
    operations: tuple[str, ...]


def user_of(party: str) -> str:
    return f"emeuse-{party}"


def owns_app_id(service: str, app_id: str) -> bool:
    """Whether the app id's group, changelog and transactional ids fall under the service's
    own grants: `emeuse-<svc>` or `emeuse-<svc>-…`."""
    own = user_of(service)
    return app_id == own or app_id.startswith(f"{own}-")


def declared(service: str) -> KafkaUse:
    """The service's declaration (services/<service>/topics.py: KAFKA)."""
    if service not in SERVICES:
        raise KeyError(f"{service!r} is not a service of the registry")
    use = importlib.import_module(f"services.{service}.topics").KAFKA
    if not isinstance(use, KafkaUse) or use.service != service:
        raise TypeError(f"services/{service}/topics.py: KAFKA must be KafkaUse({service!r}, …)")
    return use


def service_grants(use: KafkaUse) -> list[Grant]:
    """The ACLs a service's user holds, from its declaration."""
    own = user_of(use.service)
    topics: dict[str, set[str]] = {}
    for spec in (*use.reads, *use.follows):
        topics.setdefault(spec.name, set()).update(READ)
    for spec in (*use.writes, dead_letter_topic(use.service), PATIENT_DATA_ACCESSED):
        topics.setdefault(spec.name, set()).update(WRITE)
    grants = [Grant(TOPIC, name, LITERAL, _ordered(ops)) for name, ops in topics.items()]
    grants += [
        Grant(TOPIC, f"{own}-", PREFIX, INTERNAL),
        Grant(GROUP, own, LITERAL, ("Read",)),
        Grant(GROUP, f"{own}-", PREFIX, ("Read",)),
        Grant(TRANSACTIONAL_ID, f"{own}-", PREFIX, WRITE),
        Grant(CLUSTER, "kafka-cluster", LITERAL, ("IdempotentWrite",)),
    ]
    if use.partner_topics:
        grants.append(Grant(TOPIC, PARTNER_TOPICS, PREFIX, ("Read", "Write", "Describe")))
    return sorted(grants)


# The operators' tools (`emeuse`: topics, partners, audit, simulate, evaluate, publish) hold
# what their commands do: read, write, create and describe every topic (none deletes or
# reconfigures one); describe every group (partners' lag: `partner status`, the simulation's
# lag view; they join none); no transactional id (they hold no transaction); on the cluster,
# Alter and Describe for partners' SCRAM users and ACLs, and idempotent writes. Alter on the
# cluster lets them grant themselves more: their password is the operators' alone, and no
# service or auditor holds it (docs/security.md, Kafka ACLs).
TOOLS_GRANTS = (
    Grant(TOPIC, "*", LITERAL, ("Read", "Write", "Create", "Describe")),
    Grant(GROUP, "*", LITERAL, ("Describe",)),
    Grant(CLUSTER, "kafka-cluster", LITERAL, ("Alter", "Describe", "IdempotentWrite")),
)
# Auditors (`EMEUSE_CLI_KAFKA_USER=emeuse-auditor emeuse audit`) read the audit trail and
# nothing else: no group (`emeuse audit` assigns partitions and commits nothing), no write.
AUDITOR_GRANTS = (Grant(TOPIC, PATIENT_DATA_ACCESSED.name, LITERAL, READ),)


@cache
def platform_grants() -> dict[str, tuple[Grant, ...]]:
    """user -> its grants, for every service, the tools and the auditors."""
    found = {user_of(s): tuple(service_grants(declared(s))) for s in SERVICES}
    found[user_of(TOOLS)] = TOOLS_GRANTS
    found[user_of(AUDITOR)] = AUDITOR_GRANTS
    return found


def _ordered(operations: Iterable[str]) -> tuple[str, ...]:
    order = ("Read", "Write", "Create", "Describe")
    return tuple(sorted(operations, key=order.index))
