"""The Strimzi resources of the platform's Kafka: the cluster, a topic per registry topic,
a user per service and for the tools with the ACLs of emeuse.runtime.acls, a user per
partner with the ACLs `emeuse partner add` grants on a single broker. No super user.

Built from `emeuse.registry`, `emeuse.runtime.acls` and `emeuse.cli.partner_admin`
themselves, so a topic added to the registry, a topic a service declares or an ACL added
to a partner appears here at the next render.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kafka.admin import ACL, ACLResourcePatternType, ResourceType

from emeuse import partners
from emeuse.cli.partner_admin import partner_acls, partner_topic_plans
from emeuse.registry import SERVICES, TopicSpec
from emeuse.runtime import acls
from emeuse.runtime.security import AUDITOR, TOOLS

Manifest = dict[str, Any]

API = "kafka.strimzi.io/v1beta2"
CLUSTER = "emeuse"
# Strimzi 0.45 is the last operator that runs Kafka 3.9, the version the local broker,
# aiokafka 0.14 and kafka-python 3 speak (deploy/kafka/pom.xml).
KAFKA_VERSION = "3.9.0"
METADATA_VERSION = "3.9-IV0"
# The base is sized for production; the local overlay patches these down to one.
BROKERS = 3
REPLICAS = 3
MIN_IN_SYNC = 2
PLATFORM_PORT = 9092
PARTNER_PORT = 9094
PART_OF = "emeuse"
# The Secret Strimzi's cluster CA certificate is in (key `ca.crt`): what clients trust.
CLUSTER_CA_SECRET = f"{CLUSTER}-cluster-ca-cert"
# A SCRAM user per service, one for the tools (`emeuse` run in a pod, say), one for auditors.
PLATFORM_USERS = tuple(f"emeuse-{party}" for party in (*SERVICES, TOOLS, AUDITOR))


def _labels() -> dict[str, str]:
    return {"strimzi.io/cluster": CLUSTER, "app.kubernetes.io/part-of": PART_OF}


def kafka_cluster() -> list[Manifest]:
    """The KRaft cluster (no ZooKeeper) and its node pool of combined controller-brokers."""
    pool: Manifest = {
        "apiVersion": API,
        "kind": "KafkaNodePool",
        "metadata": {"name": "dual-role", "labels": _labels()},
        "spec": {
            "replicas": BROKERS,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [
                    {
                        "id": 0,
                        "type": "persistent-claim",
                        "size": "100Gi",
                        "deleteClaim": False,
                        "kraftMetadata": "shared",
                    }
                ],
            },
            "resources": {
                "requests": {"cpu": "500m", "memory": "2Gi"},
                "limits": {"memory": "2Gi"},
            },
        },
    }
    cluster: Manifest = {
        "apiVersion": API,
        "kind": "Kafka",
        "metadata": {
            "name": CLUSTER,
            "labels": {"app.kubernetes.io/part-of": PART_OF},
            "annotations": {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"},
        },
        "spec": {
            "kafka": {
                "version": KAFKA_VERSION,
                "metadataVersion": METADATA_VERSION,
                "listeners": [
                    {
                        # The services and tools: TLS and a SCRAM user each (platform_user),
                        # from the platform's own pods only (NetworkPolicy peers).
                        "name": "platform",
                        "port": PLATFORM_PORT,
                        "type": "internal",
                        "tls": True,
                        "authentication": {"type": "scram-sha-512"},
                        "networkPolicyPeers": [
                            {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}}}
                        ],
                    },
                    {
                        # Partners: TLS and one SCRAM user each, confined by ACLs.
                        "name": "partner",
                        "port": PARTNER_PORT,
                        "type": "internal",
                        "tls": True,
                        "authentication": {"type": "scram-sha-512"},
                    },
                ],
                # No super user: each KafkaUser holds its own ACLs (platform_user, partner_user).
                "authorization": {"type": "simple"},
                "config": {
                    # Topics come from KafkaTopic resources: auto-creation would pick the
                    # wrong partition count and break co-partitioned state.
                    "auto.create.topics.enable": False,
                    "allow.everyone.if.no.acl.found": False,
                    "default.replication.factor": REPLICAS,
                    "min.insync.replicas": MIN_IN_SYNC,
                    "offsets.topic.replication.factor": REPLICAS,
                    "transaction.state.log.replication.factor": REPLICAS,
                    "transaction.state.log.min.isr": MIN_IN_SYNC,
                    "group.initial.rebalance.delay.ms": 0,
                },
            },
            "entityOperator": {"topicOperator": {}, "userOperator": {}},
        },
    }
    return [cluster, pool]


def _topic(name: str, partitions: int, config: dict[str, str]) -> Manifest:
    return {
        "apiVersion": API,
        "kind": "KafkaTopic",
        # Registry names (dots, hyphens, lower case) are valid resource names as they are.
        "metadata": {"name": name, "labels": _labels()},
        "spec": {
            "topicName": name,
            "partitions": partitions,
            "replicas": REPLICAS,
            "config": dict(sorted(config.items())),
        },
    }


def registry_topics(topics: Iterable[TopicSpec]) -> list[Manifest]:
    """One KafkaTopic per registry topic: its partitions and cleanup as the registry says."""
    return [_topic(spec.name, spec.partitions, spec.kafka_config()) for spec in topics]


def partner_topics(partner_ids: Iterable[str]) -> list[Manifest]:
    """Each partner's feed, inbound and dead-letter topics, as `emeuse partner add` makes them."""
    return [
        _topic(plan.name, plan.partitions, dict(plan.config))
        for partner_id in partner_ids
        for plan in partner_topic_plans(partner_id)
    ]


_RESOURCE = {ResourceType.TOPIC: "topic", ResourceType.GROUP: "group"}
_PATTERN = {ACLResourcePatternType.LITERAL: "literal", ACLResourcePatternType.PREFIXED: "prefix"}


def _strimzi_acls(acls: Iterable[ACL]) -> list[Manifest]:
    """kafka-python ACLs as Strimzi's: one entry per resource, its operations together."""
    by_resource: dict[tuple[str, str, str], list[str]] = {}
    for acl in acls:
        pattern = acl.resource_pattern
        resource = (
            _RESOURCE[pattern.resource_type],
            pattern.resource_name,
            _PATTERN[pattern.pattern_type],
        )
        by_resource.setdefault(resource, []).append(acl.operation.name.capitalize())
    return [
        {
            "resource": {"type": kind, "name": name, "patternType": pattern},
            "operations": operations,
            "host": "*",
        }
        for (kind, name, pattern), operations in by_resource.items()
    ]


def password_secret(partner_id: str) -> str:
    """The Kubernetes Secret holding the partner's SCRAM password (key `password`)."""
    return f"emeuse-partner-{partners.check_partner_id(partner_id)}-scram"


def partner_user(partner_id: str) -> Manifest:
    """The partner's SCRAM user: password from a Secret, ACLs those of `emeuse partner add`."""
    return {
        "apiVersion": API,
        "kind": "KafkaUser",
        "metadata": {"name": partners.kafka_user(partner_id), "labels": _labels()},
        "spec": {
            "authentication": {
                "type": "scram-sha-512",
                "password": {
                    "valueFrom": {
                        "secretKeyRef": {"name": password_secret(partner_id), "key": "password"}
                    }
                },
            },
            "authorization": {"type": "simple", "acls": _strimzi_acls(partner_acls(partner_id))},
        },
    }


def _grant_acl(grant: acls.Grant) -> Manifest:
    resource: Manifest = {"type": grant.resource}
    if grant.resource != acls.CLUSTER:  # Strimzi's cluster resource has no name
        resource |= {"name": grant.name, "patternType": grant.pattern}
    return {"resource": resource, "operations": list(grant.operations), "host": "*"}


def platform_user(user: str) -> Manifest:
    """A service's (or the tools') SCRAM user: the User Operator makes its password and keeps
    it in the Secret named like the user (key `password`), which the service's pods mount;
    its ACLs are those the local broker grants it (emeuse.runtime.acls)."""
    return {
        "apiVersion": API,
        "kind": "KafkaUser",
        "metadata": {"name": user, "labels": _labels()},
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {
                "type": "simple",
                "acls": [_grant_acl(grant) for grant in acls.platform_grants()[user]],
            },
        },
    }
