"""The ACLs platform_users grants on the local broker: exactly each user's grants of
emeuse.runtime.acls, one kafka-python ACL per operation, allowances only."""

from kafka.admin import ACLPermissionType

from emeuse.cli.platform_users import USERS, platform_acls
from emeuse.registry import PATIENT_DATA_ACCESSED, SERVICES
from emeuse.runtime import acls


def held(user: str) -> set[tuple[str, str, str, str]]:
    return {
        (
            a.resource_pattern.resource_type.name,
            a.resource_pattern.resource_name,
            a.resource_pattern.pattern_type.name,
            a.operation.name,
        )
        for a in platform_acls(user)
        if a.permission_type == ACLPermissionType.ALLOW and a.principal == f"User:{user}"
    }


def test_every_platform_user_gets_acls_and_only_allowances() -> None:
    assert set(USERS) == {*(f"emeuse-{s}" for s in SERVICES), "emeuse-cli", "emeuse-auditor"}
    for user in USERS:
        assert platform_acls(user)
        assert all(a.permission_type == ACLPermissionType.ALLOW for a in platform_acls(user))
        grants = acls.platform_grants()[user]
        assert len(platform_acls(user)) == sum(len(g.operations) for g in grants)


def test_a_service_acl_names_its_own_prefixes_and_topics_in_kafka_terms() -> None:
    home = held("emeuse-home")
    assert ("TRANSACTIONAL_ID", "emeuse-home-", "PREFIXED", "WRITE") in home
    assert ("GROUP", "emeuse-home", "LITERAL", "READ") in home
    assert ("CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE") in home
    assert ("TOPIC", PATIENT_DATA_ACCESSED.name, "LITERAL", "WRITE") in home
    assert ("TOPIC", PATIENT_DATA_ACCESSED.name, "LITERAL", "READ") not in home


def test_the_tools_administer_partners_users_and_acls_and_delete_nothing() -> None:
    tools = held("emeuse-cli")
    assert ("CLUSTER", "kafka-cluster", "LITERAL", "ALTER") in tools
    assert ("TOPIC", "*", "LITERAL", "CREATE") in tools
    assert ("GROUP", "*", "LITERAL", "DESCRIBE") in tools
    assert not any(op in ("ALL", "DELETE") for *_, op in tools)
    assert not any(kind == "TRANSACTIONAL_ID" for kind, *_ in tools)
    assert not any(op in ("ALL", "ALTER") for *_, op in held("emeuse-chronic"))


def test_the_auditor_may_read_the_audit_trail_and_nothing_else() -> None:
    assert held("emeuse-auditor") == {
        ("TOPIC", PATIENT_DATA_ACCESSED.name, "LITERAL", "READ"),
        ("TOPIC", PATIENT_DATA_ACCESSED.name, "LITERAL", "DESCRIBE"),
    }
