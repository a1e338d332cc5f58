"""The ACLs a service's Kafka user holds on the local broker: it works on any topic, group
and transactional id, but never reads, deletes or reconfigures the audit trail, and cannot
change ACLs to get round that."""

from kafka.admin import ACLOperation, ACLPermissionType, ResourceType

from emeuse.cli.platform_users import AUDIT_READERS, SERVICE_USERS, USERS, platform_acls
from emeuse.registry import PATIENT_DATA_ACCESSED, SERVICES

AUDIT = PATIENT_DATA_ACCESSED.name


def grants(user: str, permission: ACLPermissionType) -> set[tuple[str, str, str]]:
    return {
        (a.resource_pattern.resource_type.name, a.resource_pattern.resource_name, a.operation.name)
        for a in platform_acls(user)
        if a.permission_type == permission and a.principal == f"User:{user}"
    }


def test_every_service_has_a_user_with_acls_and_only_the_tools_read_the_audit_trail():
    assert set(SERVICE_USERS) == {f"emeuse-{service}" for service in SERVICES}
    assert AUDIT_READERS == ("emeuse-cli",)
    assert set(USERS) == {*SERVICE_USERS, *AUDIT_READERS}


def test_a_service_is_denied_reading_deleting_or_reconfiguring_the_audit_trail():
    denied = grants("emeuse-chronic", ACLPermissionType.DENY)
    assert denied == {
        ("TOPIC", AUDIT, operation) for operation in ("READ", "DELETE", "ALTER", "ALTER_CONFIGS")
    }
    # Writing it stays allowed (by the wildcard): every service audits its calls.
    assert ("TOPIC", AUDIT, "WRITE") not in denied


def test_a_service_works_on_any_topic_group_and_transaction_but_cannot_change_acls():
    allowed = grants("emeuse-home", ACLPermissionType.ALLOW)
    for kind in ("TOPIC", "GROUP", "TRANSACTIONAL_ID"):
        assert (kind, "*", "ALL") in allowed
    cluster = {op for kind, _, op in allowed if kind == ResourceType.CLUSTER.name}
    assert cluster == {"DESCRIBE", "CREATE", "IDEMPOTENT_WRITE", "DESCRIBE_CONFIGS"}
    assert ACLOperation.ALTER.name not in cluster
