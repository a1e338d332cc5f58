"""`emeuse partner`: what a partner is granted on the broker, and bad input refused before any
broker is reached (--bootstrap points where nothing listens)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourceType

from emeuse import partner_credentials
from emeuse.cli.errors import CliError
from emeuse.cli.main import main
from emeuse.cli.partner_admin import (
    PARTNER_EVENT_TYPES,
    _update_settings_grants,
    check_can_publish,
    check_grants,
    partner_acls,
    partner_topic_plans,
)
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.registry import (
    ALERT_ACTION_REQUESTED,
    CARE_PLAN_UPDATED,
    CONSENT_CHANGED,
    PARTNER_REGISTERED,
    READING_RECORDED,
    SENSOR_EVENT_REPORTED,
)

NOWHERE = ["--bootstrap", "127.0.0.1:1"]
READING = READING_RECORDED.type_name


def run(capsys, *argv):
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("emeuse: error: ")
    return lines[0]


def test_a_partner_holds_exactly_its_topic_and_group_acls():
    held = {
        (
            acl.resource_pattern.resource_type,
            acl.resource_pattern.resource_name,
            acl.resource_pattern.pattern_type,
            acl.operation,
        )
        for acl in partner_acls("glucoflow")
    }
    literal, topic = ACLResourcePatternType.LITERAL, ResourceType.TOPIC
    assert held == {
        (topic, "emeuse-partner.glucoflow.feed", literal, ACLOperation.READ),
        (topic, "emeuse-partner.glucoflow.feed", literal, ACLOperation.DESCRIBE),
        (topic, "emeuse-partner.glucoflow.inbound", literal, ACLOperation.WRITE),
        (topic, "emeuse-partner.glucoflow.inbound", literal, ACLOperation.DESCRIBE),
        (topic, "emeuse-partner.glucoflow.dead-letter", literal, ACLOperation.READ),
        (topic, "emeuse-partner.glucoflow.dead-letter", literal, ACLOperation.WRITE),
        (topic, "emeuse-partner.glucoflow.dead-letter", literal, ACLOperation.DESCRIBE),
        (
            ResourceType.GROUP,
            "emeuse-partner.glucoflow.",
            ACLResourcePatternType.PREFIXED,
            ACLOperation.READ,
        ),
    }


def test_every_acl_allows_the_partners_own_user_only():
    for acl in partner_acls("glucoflow"):
        assert acl.principal == "User:partner-glucoflow"
        assert acl.permission_type == ACLPermissionType.ALLOW
        assert acl.host == "*"


def test_a_partner_gets_three_topics_of_six_partitions():
    plans = partner_topic_plans("glucoflow")
    assert [plan.name for plan in plans] == [
        "emeuse-partner.glucoflow.feed",
        "emeuse-partner.glucoflow.inbound",
        "emeuse-partner.glucoflow.dead-letter",
    ]
    assert {plan.partitions for plan in plans} == {6}
    assert {plan.config["cleanup.policy"] for plan in plans} == {"delete"}


def test_partners_may_be_granted_the_services_events_only():
    assert READING in PARTNER_EVENT_TYPES
    assert PARTNER_REGISTERED.type_name not in PARTNER_EVENT_TYPES
    assert CONSENT_CHANGED.type_name not in PARTNER_EVENT_TYPES
    assert "emeuse.platform.v1.MessageDeadLettered" not in PARTNER_EVENT_TYPES


def test_no_partner_may_be_granted_publishing_what_only_a_service_writes():
    assert CARE_PLAN_UPDATED.type_name not in PARTNER_EVENT_TYPES
    assert ALERT_ACTION_REQUESTED.type_name not in PARTNER_EVENT_TYPES
    # What devices observe stays theirs to send.
    assert SENSOR_EVENT_REPORTED.type_name in PARTNER_EVENT_TYPES


@pytest.mark.parametrize("command", ["add", "grant"])
def test_a_care_plan_publish_grant_is_refused_with_why_before_the_broker(capsys, command):
    purpose = ["--purpose", "remote-monitoring"] if command == "add" else []
    status, out, err = run(
        capsys,
        "partner",
        command,
        "glucoflow",
        *purpose,
        "--publish",
        READING,
        "--publish",
        CARE_PLAN_UPDATED.type_name,
        "--experiment",
        "exp-55-glucose",
        "--territory",
        "55",
        *NOWHERE,
    )
    assert status == 1 and out == ""
    assert one_line(err) == (
        "emeuse: error: --publish 'emeuse.chronic.v1.CarePlanUpdated': only the chronic "
        "service writes it (a care plan sets a patient's clinical thresholds and care team); "
        "no partner may be granted publishing it"
    )


def test_revoking_a_grant_given_before_the_type_became_a_services_own_is_allowed(capsys):
    status, _, err = run(
        capsys,
        "partner",
        "grant",
        "glucoflow",
        "--revoke",
        "--publish",
        CARE_PLAN_UPDATED.type_name,
        "--territory",
        "55",
        *NOWHERE,
    )
    # Past every check, as far as the broker (nothing listens there).
    assert status == 1
    assert "127.0.0.1:1" in one_line(err)


@pytest.mark.parametrize(
    ("grants", "fragment"),
    [
        ({"purposes": ["Remote Monitoring"]}, "purpose 'Remote Monitoring'"),
        ({"read": ["emeuse.chronic.v1.Nothing"]}, "--read 'emeuse.chronic.v1.Nothing'"),
        ({"read": [CONSENT_CHANGED.type_name]}, "--read 'emeuse.partners.v1.ConsentChanged'"),
        ({"publish": ["ReadingRecorded"]}, "--publish 'ReadingRecorded'"),
        ({"experiments": ["Exp 1"]}, "experiment 'Exp 1'"),
    ],
)
def test_bad_grants_are_refused_by_name(grants, fragment):
    with pytest.raises(CliError, match=fragment):
        check_grants(**grants)


def test_good_grants_pass():
    check_grants(
        purposes=["remote-monitoring"], read=[READING], publish=[READING], experiments=["exp-1"]
    )


def test_a_bad_partner_id_is_refused_before_the_broker(capsys):
    status, out, err = run(
        capsys, "partner", "add", "Gluco_Flow", "--purpose", "remote-monitoring", *NOWHERE
    )
    assert status == 1 and out == ""
    assert "partner id 'Gluco_Flow'" in one_line(err)


def test_add_needs_a_purpose(capsys):
    status, _, err = run(capsys, "partner", "add", "glucoflow", *NOWHERE)
    assert status == 2
    assert "--purpose" in one_line(err)


def test_an_ungrantable_type_is_refused_before_the_broker(capsys):
    status, _, err = run(
        capsys,
        "partner",
        "add",
        "glucoflow",
        "--purpose",
        "remote-monitoring",
        "--read",
        PARTNER_REGISTERED.type_name,
        "--territory",
        "55",
        *NOWHERE,
    )
    assert status == 1
    assert "not an event type a partner may be granted" in one_line(err)


def test_add_without_a_territory_changes_nothing(capsys, monkeypatch):
    monkeypatch.delenv("EMEUSE_TERRITORY", raising=False)
    status, _, err = run(
        capsys, "partner", "add", "glucoflow", "--purpose", "remote-monitoring", *NOWHERE
    )
    assert status == 1
    assert "no territory" in one_line(err)


def test_grant_needs_something_to_grant(capsys):
    status, _, err = run(capsys, "partner", "grant", "glucoflow", "--territory", "55", *NOWHERE)
    assert status == 1
    assert "nothing to grant" in one_line(err)


def test_an_unreachable_broker_is_one_line(capsys):
    status, _, err = run(capsys, "partner", "list", *NOWHERE)
    assert status == 1
    assert "127.0.0.1:1" in one_line(err)


def test_a_publish_grant_without_an_experiment_is_refused_before_the_broker(capsys):
    status, out, err = run(
        capsys,
        "partner",
        "add",
        "glucoflow",
        "--purpose",
        "remote-monitoring",
        "--publish",
        READING,
        "--territory",
        "55",
        *NOWHERE,
    )
    assert status == 1 and out == ""
    assert "--publish needs an --experiment" in one_line(err)


def guide_add_command() -> list[str]:
    """The first `emeuse partner add` of the partner guide, as a partner would paste it."""
    text = (Path(__file__).parents[3] / "docs" / "partners.md").read_text()
    start = text.index("emeuse partner add")
    command = text[start : text.index("```", start)].replace("\\\n", " ")
    return shlex.split(command)[1:]


def test_the_guides_add_command_passes_every_check_a_publishing_partner_needs(capsys):
    argv = guide_add_command()
    assert "--publish" in argv  # the guide's partner publishes...
    status, _, err = run(capsys, *argv, *NOWHERE)
    # ...and add gets as far as the broker (nothing listens there): no check refused it.
    assert status == 1
    assert "127.0.0.1:1" in one_line(err)


def test_a_grant_may_not_leave_a_publishing_partner_without_experiment():
    with pytest.raises(CliError, match="--publish needs an --experiment"):
        check_can_publish([READING], [])  # e.g. `grant --revoke --experiment` its last one
    check_can_publish([READING], ["exp-55-glucose"])
    check_can_publish([], [])  # a partner that only reads needs none


def test_grant_rewrites_the_grants_in_the_settings_file_and_keeps_the_password(tmp_path):
    path = tmp_path / "glucoflow.properties"
    partner_credentials.write(
        path,
        "glucoflow",
        partner_credentials.ClientConfig(
            "127.0.0.1:9094", "partner-glucoflow", "s3cret", publishes=(), experiments=()
        ),
    )
    registration = PartnerRegistered(
        partner_id="glucoflow", publishable_event_types=[READING], experiments=["exp-55-glucose"]
    )
    assert _update_settings_grants(path, "glucoflow", registration)
    updated = partner_credentials.read(path)
    assert updated.password == "s3cret"
    assert (updated.publishes, updated.experiments) == ((READING,), ("exp-55-glucose",))
    assert not _update_settings_grants(tmp_path / "none.properties", "glucoflow", registration)
