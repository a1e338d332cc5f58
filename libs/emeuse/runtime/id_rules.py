"""The rule of every id field of the contract, checked wherever a message enters.

Ids are opaque: a pseudonym, a platform or partner id, or a code; never a person's name,
e-mail, phone number, NIR, INS or address. One table maps each id field name of `proto/`
to its rule (charset and length); a field of that name in any message, at any depth, is
checked. A value holding a direct identifier is refused as such (IdentifyingContentError,
naming the field and the kind, never the value), one that only breaks the charset or length
as IdRuleError. Both are ValueErrors, so the edges turn them into their usual refusals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from emeuse.runtime.identifying import identifier_kind


@dataclass(frozen=True)
class IdRule:
    """What an id field may hold: a name for reasons and docs, and the whole-value pattern."""

    name: str
    pattern: re.Pattern[str]
    doc: str


PSEUDONYM = IdRule("pseudonym", re.compile(r"psn-[a-z2-7]{32}"), "psn- and 32 of a-z2-7")
OPAQUE = IdRule(
    "opaque id",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/|#+=~\-]{0,127}"),
    "1-128 of A-Za-z0-9 . _ : / | # + = ~ -, starting with a letter or digit; no space, no @",
)
CODE = IdRule(
    "code",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+\-]{0,63}"),
    "1-64 of A-Za-z0-9 . _ : + -, starting with a letter or digit (LOINC, reason codes)",
)

_PSEUDONYMS = ("patient_pseudonym", "person_pseudonym", "resident_pseudonym", "subject_pseudonym")
_CODES = (
    "failure_code",
    "follow_up_codes",
    "label_code",
    "loinc_code",
    "not_monitored_loinc_codes",
    "reason_code",
)
_OPAQUE = (
    "acknowledged_by",
    "action_id",
    "actor_id",
    "aide_id",
    "alert_id",
    "approved_by",
    "approver_id",
    "booking_id",
    "campaign_id",
    "call_id",
    "caller_id",
    "cancelled_message_ids",
    "care_plan_id",
    "causation_id",
    "cause_id",
    "change_id",
    "changed_by",
    "contact_id",
    "coordinator_id",
    "correlation_id",
    "created_by",
    "device_id",
    "end_id",
    "entry_id",
    "event_id",
    "event_ids",
    "experiment_id",
    "incident_id",
    "incident_ids",
    "last_alert_id",
    "member_id",
    "message_id",
    "moved_message_ids",
    "notified_member_ids",
    "opt_out_id",
    "partner_id",
    "partner_ids",
    "pending_review_reading_ids",
    "place_id",
    "practitioner_id",
    "reading_id",
    "reading_ids",
    "receipt_id",
    "referral_booking_id",
    "related_id",
    "reminder_id",
    "replay_id",
    "request_id",
    "requester_id",
    "rescheduled_from",
    "resolved_by",
    "reviewer_id",
    "sensor_event_id",
    "sensor_event_ids",
    "slot_id",
    "slot_ids",
    "start_id",
    "subject_id",
    "template_id",
    "visit_id",
    "withdrawn_by",
    "write_id",
)
# Every id field name of proto/ and its rule (tests/unit/runtime/test_id_rules.py fails on
# an id-like field of the contract missing here).
ID_FIELDS: dict[str, IdRule] = {
    **{name: PSEUDONYM for name in _PSEUDONYMS},
    **{name: CODE for name in _CODES},
    **{name: OPAQUE for name in _OPAQUE},
}
# A value that keeps its rule's charset (no space, no @) can only hide a number: a phone
# number, a NIR (2A/2B in Corsica) or an INS OID. Without a run like this it hides none, and
# the detector is skipped (the common case, kept cheap: every Kafka input is checked).
_NUMBER_LIKE = re.compile(
    r"[0-9]{10}|[0-9]{2}[.\-][0-9]{2}[.\-][0-9]{2}[.\-][0-9]{2}|\+|2[AaBb][0-9]{8}|1\.2\.250\."
)


class IdentifyingContentError(ValueError):
    """An id field (or header) holding a direct identifier: names the field and the kind,
    never the value."""

    def __init__(
        self, field: str, kind: str, expected: str = "an opaque id (a pseudonym or an id)"
    ) -> None:
        self.field = field
        self.kind = kind
        super().__init__(
            f"{field} holds a direct identifier ({kind}); it must be {expected} that names nobody"
        )


class IdRuleError(ValueError):
    """An id field whose value breaks its rule's charset or length (value not echoed)."""

    def __init__(self, field: str, rule: IdRule) -> None:
        self.field = field
        super().__init__(f"{field} is not a valid {rule.name} ({rule.doc})")


def check_id(field: str, value: str, rule: IdRule) -> None:
    """Refuse `value` for `field` if it holds a direct identifier or breaks `rule`."""
    if not value:
        return
    keeps_rule = rule.pattern.fullmatch(value) is not None
    # A pseudonym's 32 base32 characters are a keyed hash: they name nobody.
    if keeps_rule and (rule is PSEUDONYM or not _NUMBER_LIKE.search(value)):
        return
    kind = identifier_kind(value)
    if kind is not None:
        raise IdentifyingContentError(field, kind)
    if not keeps_rule:
        raise IdRuleError(field, rule)


def check_ids(message: Message, prefix: str = "") -> None:
    """Check every id field of `message`, nested messages included; the first fault raises."""
    for field, rule, nested in _id_fields(message.DESCRIPTOR):
        path = f"{prefix}{field.name}"
        if nested:
            values = getattr(message, field.name)
            if field.is_repeated:
                for index, item in enumerate(values):
                    check_ids(item, f"{path}[{index}].")
            elif message.HasField(field.name):
                check_ids(values, f"{path}.")
        elif rule is not None:
            if field.is_repeated:
                for item in getattr(message, field.name):
                    check_id(path, item, rule)
            else:
                check_id(path, getattr(message, field.name), rule)


@lru_cache(maxsize=1024)
def _id_fields(
    descriptor: Descriptor,
) -> tuple[tuple[FieldDescriptor, IdRule | None, bool], ...]:
    """The fields worth visiting: id strings, and messages (not maps, not well-known types)
    that may hold some."""
    fields: list[tuple[FieldDescriptor, IdRule | None, bool]] = []
    for field in descriptor.fields:
        nested = field.message_type
        if field.type == FieldDescriptor.TYPE_STRING and field.name in ID_FIELDS:
            fields.append((field, ID_FIELDS[field.name], False))
        elif (
            nested is not None
            and not nested.GetOptions().map_entry
            and not nested.full_name.startswith("google.protobuf.")
        ):
            fields.append((field, None, True))
    return tuple(fields)
