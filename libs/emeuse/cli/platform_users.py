"""Set the SCRAM credential of each of the platform's own Kafka users (a service each,
`emeuse-cli` for the tools, `emeuse-auditor` for the auditors) from its password file; used
by deploy/kafka/kafka.sh when the broker has a secure listener. Run against the loopback
PLAINTEXT listener, as the tools do.

    python -m emeuse.cli.platform_users --bootstrap 127.0.0.1:9092 --passwords .local/secrets/kafka

It then grants each user exactly its ACLs (emeuse.runtime.acls: a service's drawn from what
it declares, its own inputs, outputs, internal topics, groups and transactional ids; the
tools' for administering the platform; the auditors' to read the audit trail). The local
broker's only super user is `ANONYMOUS`, its loopback listener; on the secure listener every
platform user holds its ACLs and nothing more, as each KafkaUser of deploy/k8s does.
"""

from __future__ import annotations

import argparse
import re
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
from emeuse.registry import SERVICES
from emeuse.runtime import acls
from emeuse.runtime.security import AUDITOR, TOOLS

USERS = tuple(f"emeuse-{party}" for party in (*SERVICES, TOOLS, AUDITOR))
ENFORCED_WITHIN_S = 15.0
_RESOURCE = {
    acls.TOPIC: ResourceType.TOPIC,
    acls.GROUP: ResourceType.GROUP,
    acls.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
    acls.CLUSTER: ResourceType.CLUSTER,
}
_PATTERN = {
    acls.LITERAL: ACLResourcePatternType.LITERAL,
    acls.PREFIX: ACLResourcePatternType.PREFIXED,
}


def _operation(name: str) -> ACLOperation:
    # Strimzi's spelling (IdempotentWrite) to kafka-python's (IDEMPOTENT_WRITE).
    return ACLOperation[re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()]


def platform_acls(user: str) -> list[ACL]:
    """The ACLs of a platform user on the local broker: its grants, one ACL per operation."""
    return [
        ACL(
            f"User:{user}",
            "*",
            _operation(operation),
            ACLPermissionType.ALLOW,
            ResourcePattern(_RESOURCE[grant.resource], grant.name, _PATTERN[grant.pattern]),
        )
        for grant in acls.platform_grants()[user]
        for operation in grant.operations
    ]


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


def _acl_keys(held: list[ACL]) -> set[tuple[str, int, int, int, str, int]]:
    return {
        (
            a.principal,
            int(a.operation),
            int(a.permission_type),
            int(a.resource_pattern.resource_type),
            a.resource_pattern.resource_name,
            int(a.resource_pattern.pattern_type),
        )
        for a in held
    }


def grant(admin: KafkaAdminClient, users: tuple[str, ...] = USERS) -> None:
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
    print("kafka users: each holds its own ACLs only (emeuse.runtime.acls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
