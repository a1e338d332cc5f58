"""What a partner is given on the bus: its topics, consumer group and Kafka user.

Partner topics are created per partner (`emeuse partner add`), so they are not in the
static registry; their names derive from the partner id here, in one place.
"""

from __future__ import annotations

import re

PARTNER_ID = re.compile(r"^[a-z][a-z0-9-]{2,31}$")
PURPOSE = re.compile(r"^[a-z][a-z0-9.-]{1,63}$")
PARTITIONS = 6
# Every partner topic starts with this (the gateway's one prefixed ACL on them).
TOPIC_PREFIX = "emeuse-partner."


class PartnerIdError(ValueError):
    """A partner id that cannot name a Kafka user and topics."""


def check_partner_id(partner_id: str) -> str:
    if not PARTNER_ID.fullmatch(partner_id):
        raise PartnerIdError(
            f"partner id {partner_id!r}: 3-32 characters, lower-case letters, digits and '-', "
            "starting with a letter"
        )
    return partner_id


def feed_topic(partner_id: str) -> str:
    """Events the partner may read, for patients who consent: the partner reads only this."""
    return f"{TOPIC_PREFIX}{check_partner_id(partner_id)}.feed"


def inbound_topic(partner_id: str) -> str:
    """Events the partner publishes (e.g. its device's readings): it writes only this."""
    return f"{TOPIC_PREFIX}{check_partner_id(partner_id)}.inbound"


def dead_letter_topic(partner_id: str) -> str:
    """The partner's records set aside: its inbound rejects and its SDK's failures."""
    return f"{TOPIC_PREFIX}{check_partner_id(partner_id)}.dead-letter"


def consumer_group_prefix(partner_id: str) -> str:
    """The partner's consumer groups all start with this (one prefixed ACL)."""
    return f"{TOPIC_PREFIX}{check_partner_id(partner_id)}."


def kafka_user(partner_id: str) -> str:
    """The SCRAM user of the partner on the broker's partner listener."""
    return f"partner-{check_partner_id(partner_id)}"
