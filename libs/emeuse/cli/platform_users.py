"""Set the SCRAM credential of each of the platform's own Kafka users (a service each, and
`emeuse-cli` for the tools) from its password file; used by deploy/kafka/kafka.sh when the
broker has a secure listener. Run against the loopback PLAINTEXT listener, as the tools do.

    python -m emeuse.cli.platform_users --bootstrap 127.0.0.1:9092 --passwords .local/secrets/kafka

It then grants each service's user its ACLs (platform_acls): the local broker's super users
are `ANONYMOUS` (its loopback listener) and `emeuse-cli` (the operators' tools) only, so a
service's user may do what a service does on any topic, group and transactional id, but
not read, delete or reconfigure the audit trail (`emeuse audit` reads it as emeuse-cli),
nor change ACLs. Per-service least privilege (each service its own inputs, outputs,
changelogs, group and transactional ids) is not drawn yet: docs/security.md says what is
missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from emeuse.cli.errors import CliError
from emeuse.cli.kafka import kafka_errors
from emeuse.cli.partner_admin import SCRAM_ITERATIONS
from emeuse.registry import SERVICES, TOPICS
from emeuse.runtime.security import TOOLS

USERS = tuple(f"emeuse-{party}" for party in (*SERVICES, TOOLS))
SERVICE_USERS = tuple(f"emeuse-{service}" for service in SERVICES)
# Who reads the audit trail: the operators' tools (`emeuse audit`), a super user.
AUDIT_READERS = (f"emeuse-{TOOLS}",)
ENFORCED_WITHIN_S = 15.0
CLUSTER_NAME = "kafka-cluster"
# What a service does to the cluster itself: look at it, create its topics, write
# idempotently. Not ALTER (ACLs, and so a way round the denials below) nor broker configs.
CLUSTER_OPERATIONS = (
    ACLOperation.DESCRIBE,
    ACLOperation.CREATE,
    ACLOperation.IDEMPOTENT_WRITE,
    ACLOperation.DESCRIBE_CONFIGS,
)
# The audit trail (the registry's topics owned by `audit`): every service writes it; none
# reads, deletes or shortens it.
AUDIT_TOPICS = tuple(spec.name for spec in TOPICS if spec.owner == "audit")
AUDIT_DENIED = (
    ACLOperation.READ,
    ACLOperation.DELETE,
    ACLOperation.ALTER,
    ACLOperation.ALTER_CONFIGS,
)


def platform_acls(user: str) -> list[ACL]:
    """The ACLs of a service's user on the local broker (the tools' user is a super user)."""

    def acl(kind: ResourceType, name: str, operation: ACLOperation, allow: bool = True) -> ACL:
        return ACL(
            f"User:{user}",
            "*",
            operation,
            ACLPermissionType.ALLOW if allow else ACLPermissionType.DENY,
            ResourcePattern(kind, name, ACLResourcePatternType.LITERAL),
        )

    return [
        *(acl(kind, "*", ACLOperation.ALL) for kind in _ANY_OF),
        *(acl(ResourceType.CLUSTER, CLUSTER_NAME, operation) for operation in CLUSTER_OPERATIONS),
        # A denial wins over any allowance.
        *(
            acl(ResourceType.TOPIC, topic, operation, allow=False)
            for topic in AUDIT_TOPICS
            for operation in AUDIT_DENIED
        ),
    ]


_ANY_OF = (ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID)


def passwords(folder: Path) -> dict[str, str]:
    """user -> password, from `<folder>/<user>.password`; CliError naming a missing file."""
    found = {}
    for user in USERS:
        path = folder / f"{user}.password"
        try:
            found[user] = path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError):
            raise CliError(f"{path}: no password (make them with scripts/certs.sh)") from None
    return found


def set_credentials(admin: KafkaAdminClient, wanted: dict[str, str]) -> None:
    failed = admin.alter_user_scram_credentials(
        [
            UserScramCredentialUpsertion(
                user, ScramMechanism.SCRAM_SHA_512, password, iterations=SCRAM_ITERATIONS
            )
            for user, password in wanted.items()
        ]
    )
    refused = {user: error for user, error in failed.items() if error}
    if refused:
        raise CliError(f"SCRAM credentials refused: {refused}")
    deadline = time.monotonic() + ENFORCED_WITHIN_S
    while time.monotonic() < deadline:
        described = admin.describe_user_scram_credentials(list(wanted))
        if all((described.get(user) or {}).get("error") is None for user in wanted):
            return
        time.sleep(0.2)
    raise CliError(f"the SCRAM credentials were not in force within {ENFORCED_WITHIN_S:g} s")


def _acl_keys(acls: list[ACL]) -> set[tuple[str, int, int, int, str]]:
    return {
        (
            a.principal,
            int(a.operation),
            int(a.permission_type),
            int(a.resource_pattern.resource_type),
            a.resource_pattern.resource_name,
        )
        for a in acls
    }


def grant(admin: KafkaAdminClient, users: tuple[str, ...] = SERVICE_USERS) -> None:
    """Give each user exactly platform_acls (an ACL of an earlier version is removed),
    and wait until the broker enforces them."""
    for user in users:
        wanted = platform_acls(user)
        held = _held(admin, user)
        stale = [a for a in held if _acl_keys([a]) - _acl_keys(wanted)]
        if stale:
            admin.delete_acls([_exactly(a) for a in stale])
        created = admin.create_acls(wanted)
        if created["failed"]:
            raise CliError(f"ACLs of {user} refused: {created['failed'][0][1]}")
    deadline = time.monotonic() + ENFORCED_WITHIN_S
    while time.monotonic() < deadline:
        if all(_acl_keys(platform_acls(u)) == _acl_keys(_held(admin, u)) for u in users):
            return
        time.sleep(0.2)
    raise CliError(f"the platform users' ACLs were not in force within {ENFORCED_WITHIN_S:g} s")


def _held(admin: KafkaAdminClient, user: str) -> list[ACL]:
    held, _ = admin.describe_acls(
        ACLFilter(
            f"User:{user}",
            None,
            ACLOperation.ANY,
            ACLPermissionType.ANY,
            ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
        )
    )
    return list(held)


def _exactly(acl: ACL) -> ACLFilter:
    pattern = acl.resource_pattern
    return ACLFilter(
        acl.principal,
        acl.host,
        acl.operation,
        acl.permission_type,
        ResourcePatternFilter(pattern.resource_type, pattern.resource_name, pattern.pattern_type),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emeuse.cli.platform_users")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--passwords", type=Path, default=Path(".local/secrets/kafka"))
    args = parser.parse_args(argv)
    try:
        wanted = passwords(args.passwords)
        with kafka_errors(args.bootstrap):
            admin = KafkaAdminClient(bootstrap_servers=args.bootstrap.split(","))
            try:
                set_credentials(admin, wanted)
                grant(admin)
            finally:
                admin.close()
    except CliError as exc:
        print(f"kafka users: {exc}", file=sys.stderr)
        return 1
    print(f"kafka users: {', '.join(wanted)} can log in with SCRAM-SHA-512")
    print(f"kafka users: services' ACLs granted; only {', '.join(AUDIT_READERS)} reads the audit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
