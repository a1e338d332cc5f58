"""Each platform user's Kafka ACLs, drawn from what its service declares (topics.py: KAFKA):
its inputs, what it publishes, its own internal topics, groups and transactional ids."""

from __future__ import annotations

from emeuse.kernel.declare import Processor
from emeuse.registry import (
    CARE_PLAN_UPDATED,
    CONSENT_CHANGED,
    EVENT_SHARED,
    PATIENT_DATA_ACCESSED,
    READING_RECORDED,
    SERVICES,
    SLOT_BOOKED,
    TOPICS,
    authority_reason,
    dead_letter_topic,
    partner_publishable,
)
from emeuse.runtime import acls
from emeuse.runtime.acls import Grant, KafkaUse
from services.access.processing import processor as access_processor
from services.chronic.processing import PROCESSOR as CHRONIC
from services.coordination.processing import PROCESSOR as COORDINATION
from services.evaluation.processing import PROCESSOR as EVALUATION
from services.gateway.directory import PartnerDirectory
from services.gateway.processing import processor as gateway_processor
from services.home.processing import PROCESSOR as HOME
from services.prevention.campaigns import Directory
from services.prevention.handlers import Delays
from services.prevention.processing import processor as prevention_processor
from tests.unit.access.test_processing import SETTINGS, no_summary


def processors() -> dict[str, Processor]:
    return {
        "chronic": CHRONIC,
        "home": HOME,
        "coordination": COORDINATION,
        "evaluation": EVALUATION,
        "access": access_processor(SETTINGS, no_summary),
        "prevention": prevention_processor(Directory(), Delays()),
        "gateway": gateway_processor(PartnerDirectory()),
    }


def allowed(user: str, operation: str) -> set[str]:
    """Topic names (literal grants) the user may do this operation on."""
    return {
        grant.name
        for grant in acls.platform_grants()[user]
        if grant.resource == acls.TOPIC
        and grant.pattern == acls.LITERAL
        and operation in grant.operations
    }


def test_each_services_declared_reads_are_exactly_the_inputs_its_kernel_runs() -> None:
    built = processors()
    assert set(built) == set(SERVICES)
    for service, processor in built.items():
        assert {s.name for s in processor.inputs} == {
            s.name for s in acls.declared(service).reads
        }, service


def test_a_declaration_becomes_read_write_internal_group_and_transaction_grants() -> None:
    use = KafkaUse("chronic", reads=(READING_RECORDED,), writes=(SLOT_BOOKED, READING_RECORDED))
    grants = set(acls.service_grants(use))
    assert grants == {
        Grant("topic", READING_RECORDED.name, "literal", ("Read", "Write", "Describe")),
        Grant("topic", SLOT_BOOKED.name, "literal", ("Write", "Describe")),
        Grant("topic", dead_letter_topic("chronic").name, "literal", ("Write", "Describe")),
        Grant("topic", PATIENT_DATA_ACCESSED.name, "literal", ("Write", "Describe")),
        # The changelog `<app id>-state-changelog` of app id emeuse-chronic or emeuse-chronic-…
        Grant("topic", "emeuse-chronic-", "prefix", ("Read", "Write", "Create", "Describe")),
        Grant("group", "emeuse-chronic", "literal", ("Read",)),
        Grant("group", "emeuse-chronic-", "prefix", ("Read",)),
        Grant("transactionalId", "emeuse-chronic-", "prefix", ("Write", "Describe")),
        Grant("cluster", "kafka-cluster", "literal", ("IdempotentWrite",)),
    }


def test_a_service_reads_only_what_it_declares_and_writes_only_what_it_publishes() -> None:
    for service in SERVICES:
        use = acls.declared(service)
        user = acls.user_of(service)
        assert allowed(user, "Read") == {s.name for s in (*use.reads, *use.follows)}
        assert allowed(user, "Write") == {
            s.name for s in (*use.writes, dead_letter_topic(service), PATIENT_DATA_ACCESSED)
        }


def test_a_registry_topic_is_written_by_its_owner_the_gateway_for_partners_or_every_service():
    for spec in TOPICS:
        writers = {s for s in SERVICES if spec.name in allowed(acls.user_of(s), "Write")}
        if spec is PATIENT_DATA_ACCESSED:
            assert writers == set(SERVICES)
        elif spec in (CONSENT_CHANGED, EVENT_SHARED):
            assert writers == {"gateway"}
        else:
            expected = {spec.owner} & set(SERVICES)
            if partner_publishable(spec):
                expected.add("gateway")
            assert writers <= expected, spec.name


def test_what_only_a_service_writes_is_written_by_that_service_alone_not_the_gateway():
    authority = [spec for spec in TOPICS if authority_reason(spec) is not None]
    assert CARE_PLAN_UPDATED in authority
    for spec in authority:
        writers = {s for s in SERVICES if spec.name in allowed(acls.user_of(s), "Write")}
        # The owner publishes it (its decisions, or its gRPC API's); the broker refuses the
        # gateway, which admits partners' events, writing it at all.
        assert writers == {spec.owner}, spec.name
        assert not partner_publishable(spec)


def test_no_service_reads_the_audit_trail_or_holds_more_than_its_own_resources() -> None:
    for service in SERVICES:
        grants = acls.platform_grants()[acls.user_of(service)]
        assert PATIENT_DATA_ACCESSED.name not in allowed(acls.user_of(service), "Read")
        assert all("All" not in g.operations and "Alter" not in g.operations for g in grants)
        assert all(g.name != "*" for g in grants)
        prefixes = {g.name for g in grants if g.pattern == acls.PREFIX}
        own = {f"emeuse-{service}-"}
        # The gateway alone serves every partner's topics, which are made per partner.
        assert prefixes == (own | {"emeuse-partner."} if service == "gateway" else own)


def test_the_operators_tools_administer_the_platform_and_no_user_is_left_out() -> None:
    grants = acls.platform_grants()
    assert set(grants) == {*(acls.user_of(s) for s in SERVICES), "emeuse-cli", "emeuse-auditor"}
    # Topics, partners' lag and partners' users and ACLs; no transaction, nothing deleted.
    assert {g.resource for g in grants["emeuse-cli"]} == {"topic", "group", "cluster"}
    assert all(
        "All" not in g.operations and "Delete" not in g.operations for g in grants["emeuse-cli"]
    )
    assert PATIENT_DATA_ACCESSED.name not in allowed("emeuse-home", "Read")


def test_auditors_read_the_audit_trail_and_nothing_else() -> None:
    auditor = acls.platform_grants()["emeuse-auditor"]
    assert auditor == (Grant("topic", PATIENT_DATA_ACCESSED.name, "literal", ("Read", "Describe")),)
    assert READING_RECORDED.name not in allowed("emeuse-auditor", "Read")


def test_the_services_that_check_care_teams_read_the_care_plans_whole_and_no_other_does():
    """Access, home and prevention answer care-team callers about one person, and the
    gateway places a coordinator's consents (runtime/care_teams.py): they follow the
    care-plan topic; coordination does not."""
    for service in ("access", "home", "prevention", "gateway"):
        assert CARE_PLAN_UPDATED in acls.declared(service).follows
        assert CARE_PLAN_UPDATED.name in allowed(acls.user_of(service), "Read")
    for service in ("coordination", "evaluation"):
        assert CARE_PLAN_UPDATED.name not in allowed(acls.user_of(service), "Read")
