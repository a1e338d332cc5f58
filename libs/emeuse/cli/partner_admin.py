"""`emeuse partner add|list|grant|remove`: the partner registry and each partner's Kafka access.

A partner is its latest PartnerRegistered record on the compacted registry topic, plus, on
the broker, three topics, one SCRAM credential and ACLs that confine it (deny by default):
  feed          READ, DESCRIBE          what the consent-filtered gateway republishes for it
  inbound       WRITE, DESCRIBE         what it publishes, checked before the platform uses it
  dead-letter   READ, WRITE, DESCRIBE   its inbound rejects and its own SDK's failures
  groups emeuse-partner.<id>.*  READ    its consumer groups (prefixed)
Read grants live only in the registry: the gateway filters the feed with them, so a grant
needs no broker change. Removal marks the partner inactive and deletes the credential and
ACLs; its topics stay for audit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from emeuse import partner_credentials, partners
from emeuse.cli import kafka
from emeuse.cli.environment import partner_listener_security, tool_bootstrap, tool_kafka_login
from emeuse.cli.errors import CliError
from emeuse.cli.publish import build_event
from emeuse.partners.v1.partners_pb2 import PartnerRegistered
from emeuse.registry import (
    PARTNER_REGISTERED,
    TOPICS,
    authority_reason,
    partner_feedable,
    partner_publishable,
)
from emeuse.runtime.envelope import EXPERIMENT_ID
from emeuse.runtime.settings import SettingsError, positive_int
from emeuse.runtime.topics import TopicError, TopicPlan, ensure_topics

SOURCE = "emeuse/cli"
SCRAM_ITERATIONS = 8192
DAY_MS = 24 * 3600 * 1000
# How long add/remove wait for the broker to enforce what they changed.
ENFORCED_WITHIN_S = 15.0

# What a partner may publish: the four services' events. Not the registry or consents
# (other partners' grants, every patient's choices), not the platform's dead letters, and
# not what only the owning service writes (a care plan, an alert: registry.SERVICE_AUTHORITY).
PARTNER_EVENT_TYPES = frozenset(spec.type_name for spec in TOPICS if partner_publishable(spec))
# The types only their service writes, with why: the refusal names the reason.
SERVICE_ONLY_TYPES = {
    spec.type_name: (spec.owner, reason)
    for spec in TOPICS
    if (reason := authority_reason(spec)) is not None
}
# What a partner may read: the events the gateway can filter by consent (person-keyed).
PARTNER_READABLE_TYPES = frozenset(spec.type_name for spec in TOPICS if partner_feedable(spec))

READ = (ACLOperation.READ, ACLOperation.DESCRIBE)
WRITE = (ACLOperation.WRITE, ACLOperation.DESCRIBE)
READ_WRITE = (ACLOperation.READ, ACLOperation.WRITE, ACLOperation.DESCRIBE)


def principal(partner_id: str) -> str:
    return f"User:{partners.kafka_user(partner_id)}"


def partner_acls(partner_id: str) -> list[ACL]:
    """Every ACL a partner holds; anything not listed here the broker refuses it."""
    literal = ACLResourcePatternType.LITERAL
    grants: list[tuple[ResourceType, str, ACLResourcePatternType, tuple[ACLOperation, ...]]] = [
        (ResourceType.TOPIC, partners.feed_topic(partner_id), literal, READ),
        (ResourceType.TOPIC, partners.inbound_topic(partner_id), literal, WRITE),
        (ResourceType.TOPIC, partners.dead_letter_topic(partner_id), literal, READ_WRITE),
        (
            ResourceType.GROUP,
            partners.consumer_group_prefix(partner_id),
            ACLResourcePatternType.PREFIXED,
            (ACLOperation.READ,),
        ),
    ]
    return [
        ACL(
            principal(partner_id),
            "*",
            operation,
            ACLPermissionType.ALLOW,
            ResourcePattern(kind, name, pattern),
        )
        for kind, name, pattern, operations in grants
        for operation in operations
    ]


def partner_topic_plans(partner_id: str) -> list[TopicPlan]:
    keep_30_days = {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)}
    return [
        TopicPlan(partners.feed_topic(partner_id), partners.PARTITIONS, keep_30_days),
        TopicPlan(partners.inbound_topic(partner_id), partners.PARTITIONS, keep_30_days),
        # Kept as long as the platform's own dead letters: someone must look at them.
        TopicPlan(
            partners.dead_letter_topic(partner_id),
            partners.PARTITIONS,
            {"cleanup.policy": "delete", "retention.ms": str(90 * DAY_MS)},
        ),
    ]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def check_partner_id(partner_id: str) -> str:
    try:
        return partners.check_partner_id(partner_id)
    except partners.PartnerIdError as exc:
        raise CliError(str(exc)) from None


def check_grants(
    *,
    purposes: Iterable[str] = (),
    read: Iterable[str] = (),
    publish: Iterable[str] = (),
    experiments: Iterable[str] = (),
) -> None:
    """Refuse anything a registration must not hold; raises CliError naming the first fault."""
    for purpose in purposes:
        if not partners.PURPOSE.fullmatch(purpose):
            raise CliError(
                f"purpose {purpose!r}: 2-64 characters, lower-case letters, digits, '.' "
                "and '-', starting with a letter"
            )
    for event_type in publish:
        if event_type in SERVICE_ONLY_TYPES:
            owner, reason = SERVICE_ONLY_TYPES[event_type]
            raise CliError(
                f"--publish {event_type!r}: only the {owner} service writes it ({reason}); "
                "no partner may be granted publishing it"
            )
    for flag, types, allowed in (
        ("--read", read, PARTNER_READABLE_TYPES),
        ("--publish", publish, PARTNER_EVENT_TYPES),
    ):
        for event_type in types:
            if event_type not in allowed:
                raise CliError(
                    f"{flag} {event_type!r} is not an event type a partner may be granted; "
                    f"one of: {', '.join(sorted(allowed))}"
                )
    for experiment in experiments:
        if not EXPERIMENT_ID.fullmatch(experiment):
            raise CliError(
                f"experiment {experiment!r} is not an experiment id ([a-z0-9][a-z0-9._-]*)"
            )


def check_can_publish(publishes: Iterable[str], experiments: Iterable[str]) -> None:
    """A publish grant needs an experiment: the gateway refuses every event of a partner
    without one (an empty list is not "any"), so such a grant would be a trap."""
    if list(publishes) and not list(experiments):
        raise CliError(
            "--publish needs an --experiment: the platform refuses every event a partner "
            "publishes outside its experiments; give --experiment ID (e.g. --experiment "
            "exp-55-glucose)"
        )


def _wait_until(what: str, done: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise CliError(f"the broker did not apply {what} within {timeout_s:.0f} s")
        time.sleep(0.2)


def _acl_keys(acls: Iterable[ACL]) -> set[tuple[int, str, int, int]]:
    return {
        (
            int(a.resource_pattern.resource_type),
            a.resource_pattern.resource_name,
            int(a.resource_pattern.pattern_type),
            int(a.operation),
        )
        for a in acls
        if a.permission_type == ACLPermissionType.ALLOW
    }


def _acls_of(admin: KafkaAdminClient, partner_id: str) -> list[ACL]:
    everything = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    held, _ = admin.describe_acls(
        ACLFilter(principal(partner_id), None, ACLOperation.ANY, ACLPermissionType.ANY, everything)
    )
    return list(held)


def _has_credential(admin: KafkaAdminClient, user: str) -> bool:
    described = admin.describe_user_scram_credentials([user]).get(user) or {}
    return described.get("error") is None and any(
        info["mechanism"] == ScramMechanism.SCRAM_SHA_512
        for info in described.get("credential_infos", [])
    )


def grant_access(admin: KafkaAdminClient, partner_id: str, password: str) -> None:
    """Set the partner's SCRAM credential and ACLs; return once the broker enforces them."""
    user = partners.kafka_user(partner_id)
    failed = admin.alter_user_scram_credentials(
        [
            UserScramCredentialUpsertion(
                user, ScramMechanism.SCRAM_SHA_512, password, iterations=SCRAM_ITERATIONS
            )
        ]
    )
    if failed.get(user):
        raise CliError(f"credential of {user}: {failed[user]}")
    wanted = partner_acls(partner_id)
    created = admin.create_acls(wanted)
    if created["failed"]:
        raise CliError(f"ACLs of {user}: {', '.join(map(str, created['failed']))}")
    expected = _acl_keys(wanted)
    _wait_until(
        f"the credential of {user}", lambda: _has_credential(admin, user), ENFORCED_WITHIN_S
    )
    _wait_until(
        f"the ACLs of {user}",
        lambda: expected <= _acl_keys(_acls_of(admin, partner_id)),
        ENFORCED_WITHIN_S,
    )


def revoke_access(admin: KafkaAdminClient, partner_id: str) -> None:
    """Delete the partner's credential and every ACL naming it; idempotent."""
    user = partners.kafka_user(partner_id)
    if _has_credential(admin, user):
        failed = admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)]
        )
        if failed.get(user):
            raise CliError(f"credential of {user}: {failed[user]}")
    everything = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    for _, _, error in admin.delete_acls(
        [
            ACLFilter(
                principal(partner_id), None, ACLOperation.ANY, ACLPermissionType.ANY, everything
            )
        ]
    ):
        if error.errno:
            raise CliError(f"ACLs of {user}: {error.__name__}")
    _wait_until(
        f"the deletion of {user}'s credential",
        lambda: not _has_credential(admin, user),
        ENFORCED_WITHIN_S,
    )
    _wait_until(
        f"the deletion of {user}'s ACLs", lambda: not _acls_of(admin, partner_id), ENFORCED_WITHIN_S
    )


def read_registrations(bootstrap: str, timeout_s: float = 10.0) -> dict[str, PartnerRegistered]:
    """The latest registration of every partner, active or not, read to the topic's end."""
    consumer = kafka.consumer(bootstrap)
    latest: dict[str, PartnerRegistered] = {}
    with kafka.kafka_errors(bootstrap):
        try:
            partitions = consumer.partitions_for_topic(PARTNER_REGISTERED.name)
            if not partitions:
                return latest
            assigned = [TopicPartition(PARTNER_REGISTERED.name, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            ends = consumer.end_offsets(assigned)
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < end for tp, end in ends.items()):
                if time.monotonic() > deadline:
                    raise CliError(
                        f"could not read {PARTNER_REGISTERED.name} to its end in {timeout_s:.0f} s"
                    )
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        try:
                            registration = PartnerRegistered.FromString(record.value or b"")
                        except DecodeError:
                            continue  # not a registration: nothing the registry can use
                        if registration.partner_id:
                            latest[registration.partner_id] = registration
        finally:
            consumer.close()
    return latest


def publish_registration(
    bootstrap: str, registration: PartnerRegistered, *, territory: str | None, experiment: str
) -> str:
    """Send the registration with full envelope headers; returns the event id."""
    outgoing = build_event(
        event_type=PARTNER_REGISTERED.type_name,
        json_text=json_format.MessageToJson(registration, preserving_proto_field_name=True),
        subject=None,
        territory=territory,
        experiment=experiment,
        key=None,
        topic=PARTNER_REGISTERED.name,
        source=SOURCE,
    )
    producer = kafka.producer(bootstrap)
    with kafka.kafka_errors(bootstrap):
        try:
            producer.send(
                PARTNER_REGISTERED.name,
                key=(outgoing.key or registration.partner_id).encode(),
                value=outgoing.value,
                headers=outgoing.headers,
            ).get(timeout=15)
        finally:
            producer.close(timeout=5)
    return outgoing.envelope.event_id


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


def _grants(registration: PartnerRegistered) -> tuple[object, ...]:
    return (
        list(registration.purposes),
        list(registration.readable_event_types),
        list(registration.publishable_event_types),
        list(registration.experiments),
        registration.own_events_withheld,
    )


def _ensure_topics(bootstrap: str, plans: list[TopicPlan], replication: str) -> list[str]:
    factor = positive_int("--replication-factor", replication)
    try:
        return [
            f"{name} ({state})"
            for name, state in ensure_topics(bootstrap, plans, factor, login=tool_kafka_login())
        ]
    except TopicError as exc:
        raise CliError(str(exc)) from None


def _check_territory(args: argparse.Namespace) -> None:
    # Checked before any broker change: a registration that cannot be published must not
    # leave a credential behind.
    if args.territory is None:
        raise CliError(
            "no territory for the registry event: give --territory (52, 54 or 55) "
            "or set EMEUSE_TERRITORY"
        )


def cmd_add(args: argparse.Namespace) -> int:
    partner_id = check_partner_id(args.partner_id)
    check_grants(
        purposes=args.purpose, read=args.read, publish=args.publish, experiments=args.experiment
    )
    check_can_publish(args.publish, args.experiment)
    _check_territory(args)
    settings_path = Path(args.secrets_dir) / f"{partner_id}.properties"
    known = read_registrations(args.bootstrap).get(partner_id)
    if known is not None and known.active:
        raise CliError(f"partner {partner_id} exists; change it with `emeuse partner grant`")
    plans = partner_topic_plans(partner_id)
    registry = TopicPlan(
        PARTNER_REGISTERED.name, PARTNER_REGISTERED.partitions, PARTNER_REGISTERED.kafka_config()
    )
    topics = _ensure_topics(args.bootstrap, [registry, *plans], args.replication_factor)[1:]
    password = partner_credentials.new_password()
    try:
        protocol, ca_file = partner_listener_security()
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    config = partner_credentials.ClientConfig(
        bootstrap=args.partner_bootstrap,
        username=partners.kafka_user(partner_id),
        password=password,
        security_protocol=protocol,
        ca_file=ca_file,
        publishes=tuple(_unique(args.publish)),
        experiments=tuple(_unique(args.experiment)),
    )
    try:
        partner_credentials.write(settings_path, partner_id, config)
    except OSError as exc:
        raise CliError(f"cannot write {settings_path}: {exc.strerror}") from None
    admin = kafka.admin(args.bootstrap)
    with kafka.kafka_errors(args.bootstrap):
        try:
            grant_access(admin, partner_id, password)
        finally:
            admin.close()
    registration = PartnerRegistered(
        partner_id=partner_id,
        purposes=_unique(args.purpose),
        readable_event_types=_unique(args.read),
        publishable_event_types=_unique(args.publish),
        experiments=_unique(args.experiment),
        active=True,
        registered_at=_now(),
        own_events_withheld=args.without_own_events,
    )
    publish_registration(
        args.bootstrap, registration, territory=args.territory, experiment=args.event_experiment
    )
    print(f"{partner_id}: added")
    for topic in topics:
        print(f"  topic     {topic}")
    print(f"  user      {config.username} (SCRAM-SHA-512, {protocol}) on {config.bootstrap}")
    print(f"  settings  {settings_path} (mode 0600; give it to the partner, keep it secret)")
    if args.show_password:
        print(f"  password  {password}")
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    partner_id = check_partner_id(args.partner_id)
    if not (args.purpose or args.read or args.publish or args.experiment or args.own_events):
        raise CliError(
            "nothing to grant: give --read, --publish, --purpose, --experiment or --own-events"
        )
    # A grant given before a type became the services' own can still be revoked.
    check_grants(
        purposes=args.purpose,
        read=args.read,
        publish=[] if args.revoke else args.publish,
        experiments=args.experiment,
    )
    _check_territory(args)
    known = read_registrations(args.bootstrap).get(partner_id)
    if known is None or not known.active:
        raise CliError(f"no active partner {partner_id}; `emeuse partner list --all` shows them")

    def change(current: Iterable[str], given: list[str]) -> list[str]:
        if args.revoke:
            return [value for value in current if value not in given]
        return _unique([*current, *given])

    registration = PartnerRegistered(
        partner_id=partner_id,
        purposes=change(known.purposes, args.purpose),
        readable_event_types=change(known.readable_event_types, args.read),
        publishable_event_types=change(known.publishable_event_types, args.publish),
        experiments=change(known.experiments, args.experiment),
        active=True,
        registered_at=_now(),
        own_events_withheld=(
            known.own_events_withheld if args.own_events is None else args.own_events == "withhold"
        ),
    )
    if _grants(registration) == _grants(known):
        print(f"{partner_id}: unchanged")
        return 0
    check_can_publish(registration.publishable_event_types, registration.experiments)
    publish_registration(
        args.bootstrap, registration, territory=args.territory, experiment=args.event_experiment
    )
    print(f"{partner_id}: {'revoked' if args.revoke else 'granted'}")
    _print_grants(registration)
    settings_path = Path(args.secrets_dir) / f"{partner_id}.properties"
    if _update_settings_grants(settings_path, partner_id, registration):
        print(f"  settings  {settings_path} lists the new grants: hand it to the partner again")
    return 0


def _update_settings_grants(path: Path, partner_id: str, registration: PartnerRegistered) -> bool:
    """Rewrite the grants the SDK checks in the partner's settings file, if operations keep
    it here; the password stays. False when there is no such file."""
    try:
        config = partner_credentials.read(path)
    except partner_credentials.CredentialsFileError:
        return False
    updated = dataclasses.replace(
        config,
        publishes=tuple(registration.publishable_event_types),
        experiments=tuple(registration.experiments),
    )
    try:
        partner_credentials.write(path, partner_id, updated)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    return True


def cmd_remove(args: argparse.Namespace) -> int:
    partner_id = check_partner_id(args.partner_id)
    _check_territory(args)
    known = read_registrations(args.bootstrap).get(partner_id)
    if known is None:
        raise CliError(f"no partner {partner_id}; `emeuse partner list --all` shows them")
    if known.active:
        removed = PartnerRegistered()
        removed.CopyFrom(known)
        removed.active = False
        removed.registered_at.CopyFrom(_now())
        # The gateway stops the feed on this record, before the credential goes.
        publish_registration(
            args.bootstrap, removed, territory=args.territory, experiment=args.event_experiment
        )
    admin = kafka.admin(args.bootstrap)
    with kafka.kafka_errors(args.bootstrap):
        try:
            revoke_access(admin, partner_id)
        finally:
            admin.close()
    settings_path = Path(args.secrets_dir) / f"{partner_id}.properties"
    settings_path.unlink(missing_ok=True)
    print(f"{partner_id}: removed{'' if known.active else ' (it was already)'}")
    print(f"  user      {partners.kafka_user(partner_id)}: credential and ACLs deleted")
    print(
        f"  topics    kept for audit: {partners.feed_topic(partner_id)}, "
        f"{partners.inbound_topic(partner_id)}, {partners.dead_letter_topic(partner_id)}"
    )
    return 0


def _as_dict(registration: PartnerRegistered) -> dict[str, Any]:
    shown: dict[str, Any] = json_format.MessageToDict(
        registration,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    partner_id = registration.partner_id
    with_topics = partners.PARTNER_ID.fullmatch(partner_id) is not None
    shown.update(
        {
            "kafka_user": partners.kafka_user(partner_id) if with_topics else None,
            "feed_topic": partners.feed_topic(partner_id) if with_topics else None,
            "inbound_topic": partners.inbound_topic(partner_id) if with_topics else None,
            "dead_letter_topic": partners.dead_letter_topic(partner_id) if with_topics else None,
        }
    )
    return shown


def _print_grants(registration: PartnerRegistered) -> None:
    for label, values in (
        ("purposes", registration.purposes),
        ("reads", registration.readable_event_types),
        ("publishes", registration.publishable_event_types),
        ("experiments", registration.experiments),
    ):
        print(f"  {label:<11} {', '.join(values) or '-'}")
    print(f"  own events  {'withheld' if registration.own_events_withheld else 'in its feed'}")


def cmd_list(args: argparse.Namespace) -> int:
    shown = [
        registration
        for _, registration in sorted(read_registrations(args.bootstrap).items())
        if registration.active or args.all
    ]
    if args.json:
        for registration in shown:
            print(json.dumps(_as_dict(registration)))
        return 0
    rows = [("PARTNER", "ACTIVE", "PURPOSES", "READS", "PUBLISHES", "EXPERIMENTS")]
    for r in shown:
        rows.append(
            (
                r.partner_id,
                "yes" if r.active else "no",
                ",".join(r.purposes) or "-",
                ",".join(t.rsplit(".", 1)[-1] for t in r.readable_event_types) or "-",
                ",".join(t.rsplit(".", 1)[-1] for t in r.publishable_event_types) or "-",
                ",".join(r.experiments) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _common_options(parser: argparse.ArgumentParser, *, registry_event: bool) -> None:
    parser.add_argument(
        "--bootstrap",
        default=tool_bootstrap(),
        help="the platform's Kafka bootstrap servers (env EMEUSE_KAFKA_BOOTSTRAP)",
    )
    if not registry_event:
        return
    parser.add_argument(
        "--territory",
        default=os.environ.get("EMEUSE_TERRITORY"),
        help="territory stamped on the registry event: 52, 54 or 55 (env EMEUSE_TERRITORY)",
    )
    parser.add_argument(
        "--event-experiment",
        default=os.environ.get("EMEUSE_EXPERIMENT", "emeuse-platform"),
        help="experiment stamped on the registry event (env EMEUSE_EXPERIMENT, "
        "default emeuse-platform)",
    )


def _grant_options(parser: argparse.ArgumentParser, *, purpose_required: bool) -> None:
    parser.add_argument("partner_id", metavar="ID", help="partner id, e.g. glucoflow")
    parser.add_argument(
        "--purpose",
        action="append",
        default=[],
        required=purpose_required,
        help="purpose patients consent to, e.g. remote-monitoring (repeat for several)",
    )
    parser.add_argument(
        "--read", action="append", default=[], metavar="TYPE", help="event type it may read"
    )
    parser.add_argument(
        "--publish", action="append", default=[], metavar="TYPE", help="event type it may publish"
    )
    parser.add_argument(
        "--experiment", action="append", default=[], help="experiment id it belongs to"
    )


def add_partner_admin_commands(subparsers: Any) -> None:
    """`add`, `list`, `grant` and `remove` under `emeuse partner` (subparsers of that group)."""
    add = subparsers.add_parser("add", help="register a partner: topics, credential, ACLs")
    _grant_options(add, purpose_required=True)
    add.add_argument(
        "--partner-bootstrap",
        default=os.environ.get("EMEUSE_KAFKA_PARTNER_BOOTSTRAP", "127.0.0.1:9094"),
        help="the partner listener written in its settings file "
        "(env EMEUSE_KAFKA_PARTNER_BOOTSTRAP)",
    )
    add.add_argument(
        "--show-password", action="store_true", help="also print the password (it is in the file)"
    )
    add.add_argument(
        "--without-own-events",
        action="store_true",
        help="its feed leaves out the events it published itself (ce_source partner/ID)",
    )
    add.add_argument(
        "--replication-factor",
        default=os.environ.get("EMEUSE_REPLICATION_FACTOR", "1"),
        help="replication factor of the partner's topics (env EMEUSE_REPLICATION_FACTOR)",
    )
    _secrets_option(add)
    _common_options(add, registry_event=True)
    add.set_defaults(handler=cmd_add)

    listing = subparsers.add_parser("list", help="partners in the registry")
    listing.add_argument("--json", action="store_true", help="one JSON object per partner")
    listing.add_argument("--all", action="store_true", help="removed partners too")
    _common_options(listing, registry_event=False)
    listing.set_defaults(handler=cmd_list)

    grant = subparsers.add_parser("grant", help="let a partner read or publish more (or less)")
    _grant_options(grant, purpose_required=False)
    grant.add_argument(
        "--revoke", action="store_true", help="withdraw the given grants instead of adding them"
    )
    grant.add_argument(
        "--own-events",
        choices=("withhold", "send"),
        help="withhold: its feed leaves out the events it published itself; send: includes them",
    )
    _secrets_option(grant)
    _common_options(grant, registry_event=True)
    grant.set_defaults(handler=cmd_grant)

    remove = subparsers.add_parser("remove", help="stop a partner: credential and ACLs deleted")
    remove.add_argument("partner_id", metavar="ID")
    _secrets_option(remove)
    _common_options(remove, registry_event=True)
    remove.set_defaults(handler=cmd_remove)


def _secrets_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secrets-dir",
        default=os.environ.get("EMEUSE_PARTNER_SECRETS_DIR", ".local/secrets/partners"),
        help="where partners' client settings files are written (env EMEUSE_PARTNER_SECRETS_DIR)",
    )
