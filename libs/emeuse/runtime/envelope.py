"""Event metadata as Kafka headers: CloudEvents binary mode plus the platform's extensions.

The record value is the bare protobuf message; everything a consumer routes on travels
in headers, so it can route without decoding. `EventEnvelope` (proto) is the in-memory form.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from emeuse.event.v1.envelope_pb2 import EventEnvelope
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.runtime.id_rules import IdentifyingContentError
from emeuse.runtime.identifying import identifier_kind
from emeuse.runtime.pseudonym import is_pseudonym

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/protobuf"

H_SPECVERSION = "ce_specversion"
H_ID = "ce_id"
H_TYPE = "ce_type"
H_SOURCE = "ce_source"
H_TIME = "ce_time"
H_RECORDED = "ce_recordedtime"
H_SUBJECT = "ce_subject"
H_TERRITORY = "ce_territory"
H_EXPERIMENT = "ce_experiment"
H_CORRELATION = "ce_correlationid"
H_CAUSATION = "ce_causationid"
H_SCHEMA_VERSION = "ce_schemaversion"
H_CONTENT_TYPE = "content-type"
# Set by the gateway on an event a replay sends again to a partner's feed: the replay's id.
# Not a ce_ attribute: the event is the same CloudEvent, delivered once more.
H_REPLAY = "emeuse_replay"

TERRITORY_CODES = {
    "52": Territory.TERRITORY_HAUTE_MARNE,
    "54": Territory.TERRITORY_MEURTHE_ET_MOSELLE,
    "55": Territory.TERRITORY_MEUSE,
}
CODE_OF_TERRITORY = {value: code for code, value in TERRITORY_CODES.items()}

Headers = list[tuple[str, bytes]]
EXPERIMENT_ID = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")
SOURCE = re.compile(r"(emeuse|partner)/[a-z0-9][a-z0-9._\-]{0,63}")
# A dead letter may set aside a record whose territory is missing or wrong.
DEAD_LETTER_TYPE = "emeuse.platform.v1.MessageDeadLettered"
AUDIT_TYPE = "emeuse.audit.v1.PatientDataAccessed"
# Records about the platform's own work, not a territory's: they carry no ce_territory.
TERRITORY_FREE_TYPES = (DEAD_LETTER_TYPE, AUDIT_TYPE)


class EnvelopeError(ValueError):
    """Headers that do not make a valid event envelope."""


class IdentifyingEnvelopeError(EnvelopeError, IdentifyingContentError):
    """A header holding a direct identifier (a name as ce_subject): dead-lettered withheld."""


def territory_from_code(code: str) -> Territory.ValueType:
    try:
        return TERRITORY_CODES[code.strip()]
    except KeyError:
        raise EnvelopeError(
            f"territory {code!r} is not a programme département (52, 54 or 55)"
        ) from None


def timestamp(moment: datetime) -> Timestamp:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def new_envelope(
    *,
    event_type: str,
    source: str,
    subject_pseudonym: str,
    territory: Territory.ValueType,
    experiment_id: str,
    schema_version: str,
    occurred_at: datetime,
    recorded_at: datetime | None = None,
    event_id: str | None = None,
    cause: EventEnvelope | None = None,
) -> EventEnvelope:
    """The envelope of a new event; a caused event inherits the correlation id of its cause."""
    event_id = event_id or str(uuid.uuid4())
    envelope = EventEnvelope(
        event_id=event_id,
        event_type=event_type,
        source=source,
        occurred_at=timestamp(occurred_at),
        recorded_at=timestamp(recorded_at or datetime.now(UTC)),
        subject_pseudonym=subject_pseudonym,
        territory=territory,
        experiment_id=experiment_id,
        correlation_id=cause.correlation_id if cause else event_id,
        causation_id=cause.event_id if cause else "",
        schema_version=schema_version,
    )
    validate_envelope(envelope)
    return envelope


def validate_envelope(envelope: EventEnvelope) -> None:
    missing = [
        name
        for name in ("event_id", "event_type", "source", "experiment_id", "correlation_id")
        if not getattr(envelope, name)
    ]
    if missing:
        raise EnvelopeError(f"envelope lacks {', '.join(missing)}")
    if (
        envelope.territory not in CODE_OF_TERRITORY
        and envelope.event_type not in TERRITORY_FREE_TYPES
    ):
        raise EnvelopeError("envelope has no programme territory (52, 54 or 55)")
    if envelope.subject_pseudonym and not is_pseudonym(envelope.subject_pseudonym):
        # Catches an INS, a name or a phone number put where a pseudonym belongs.
        kind = identifier_kind(envelope.subject_pseudonym)
        if kind is not None:
            raise IdentifyingEnvelopeError("ce_subject", kind, "a platform pseudonym (psn-...)")
        raise EnvelopeError("subject is not a platform pseudonym (psn-...)")
    if not envelope.HasField("occurred_at"):
        raise EnvelopeError("envelope lacks the time the event happened")
    # Ids, not free text: a name typed where an id belongs must not travel on the bus.
    if not EXPERIMENT_ID.fullmatch(envelope.experiment_id):
        raise EnvelopeError("ce_experiment is not an experiment id ([a-z0-9][a-z0-9._-]*)")
    if not SOURCE.fullmatch(envelope.source):
        raise EnvelopeError("ce_source is not emeuse/<service> or partner/<id>")


def _rfc3339(stamp: Timestamp) -> str:
    return stamp.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def to_headers(envelope: EventEnvelope) -> Headers:
    headers = [
        (H_SPECVERSION, SPEC_VERSION),
        (H_ID, envelope.event_id),
        (H_TYPE, envelope.event_type),
        (H_SOURCE, envelope.source),
        (H_TIME, _rfc3339(envelope.occurred_at)),
        (H_RECORDED, _rfc3339(envelope.recorded_at)),
        (H_EXPERIMENT, envelope.experiment_id),
        (H_CORRELATION, envelope.correlation_id),
        (H_SCHEMA_VERSION, envelope.schema_version),
        (H_CONTENT_TYPE, CONTENT_TYPE),
    ]
    if envelope.territory in CODE_OF_TERRITORY:
        headers.append((H_TERRITORY, CODE_OF_TERRITORY[envelope.territory]))
    if envelope.subject_pseudonym:
        headers.append((H_SUBJECT, envelope.subject_pseudonym))
    if envelope.causation_id:
        headers.append((H_CAUSATION, envelope.causation_id))
    if envelope.replay_id:
        headers.append((H_REPLAY, envelope.replay_id))
    return [(name, value.encode()) for name, value in headers]


def header_map(
    headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None,
) -> dict[str, bytes]:
    """Headers as a dict whatever the client gave (a list of pairs or a mapping)."""
    if headers is None:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name): bytes(value or b"") for name, value in pairs}


# The range of a protobuf Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
TIMESTAMP_MIN_S, TIMESTAMP_MAX_S = -62_135_596_800, 253_402_300_799


def _parse_time(name: str, raw: str) -> Timestamp:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise EnvelopeError(f"header {name} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise EnvelopeError(f"header {name} has no time zone")
    try:
        # Seconds and nanos straight from the parsed time: Timestamp.FromDatetime costs
        # more than the rest of the envelope, on every record.
        seconds = math.floor(moment.timestamp())
        if not TIMESTAMP_MIN_S <= seconds <= TIMESTAMP_MAX_S:
            raise ValueError(seconds)
        return Timestamp(seconds=seconds, nanos=moment.microsecond * 1000)
    except (OverflowError, ValueError):
        raise EnvelopeError(f"header {name} is out of range") from None


def from_headers(
    headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None,
) -> EventEnvelope:
    """Parse and validate the envelope of a received record."""
    raw = headers if isinstance(headers, dict) else header_map(headers)
    try:
        text = {name: value.decode() for name, value in raw.items() if name.startswith("ce_")}
    except UnicodeDecodeError:
        raise EnvelopeError("a ce_ header is not UTF-8") from None
    missing = [
        name
        for name in (H_SPECVERSION, H_ID, H_TYPE, H_SOURCE, H_TIME, H_EXPERIMENT)
        if not text.get(name)
    ]
    if not text.get(H_TERRITORY) and text.get(H_TYPE) not in TERRITORY_FREE_TYPES:
        missing.append(H_TERRITORY)
    if missing:
        raise EnvelopeError(f"missing header(s) {', '.join(missing)}")
    if text[H_SPECVERSION] != SPEC_VERSION:
        raise EnvelopeError(f"ce_specversion {text[H_SPECVERSION]!r} is not {SPEC_VERSION}")
    content_type = raw.get(H_CONTENT_TYPE, CONTENT_TYPE.encode())
    if content_type != CONTENT_TYPE.encode():
        raise EnvelopeError(f"content-type {content_type!r} is not {CONTENT_TYPE}")
    envelope = EventEnvelope(
        event_id=text[H_ID],
        event_type=text[H_TYPE],
        source=text[H_SOURCE],
        occurred_at=_parse_time(H_TIME, text[H_TIME]),
        subject_pseudonym=text.get(H_SUBJECT, ""),
        territory=(
            territory_from_code(text[H_TERRITORY])
            if text.get(H_TERRITORY)
            else Territory.TERRITORY_UNSPECIFIED
        ),
        experiment_id=text[H_EXPERIMENT],
        correlation_id=text.get(H_CORRELATION) or text[H_ID],
        causation_id=text.get(H_CAUSATION, ""),
        schema_version=text.get(H_SCHEMA_VERSION, ""),
    )
    if text.get(H_RECORDED):
        envelope.recorded_at.CopyFrom(_parse_time(H_RECORDED, text[H_RECORDED]))
    replay = raw.get(H_REPLAY)
    if replay:
        envelope.replay_id = replay.decode(errors="replace")
    validate_envelope(envelope)
    return envelope
