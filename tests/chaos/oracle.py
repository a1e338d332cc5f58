"""A reference round as the oracle: outputs a faulted round must give, taken from a fault-free
round over the same records.

A service's outputs depend only on each key's inputs in order, and their ids derive from
those inputs, so a faulted round over the same records must give the reference's outputs:
each meaning once, under the reference's id, with the same content once the times the
service stamps from its own clock are left out. Pure: Outputs in, Rows out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from google.protobuf.message import Message

from emeuse.registry import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_RESOLVED,
    ALERT_UPDATED,
)
from emeuse.runtime import envelope as env
from tests.chaos.kafka_io import Output
from tests.chaos.scenario import Row

DEAD_LETTERS = "dead letters"


def _dead_letter(o: Output) -> Hashable:
    # The letter's own id is drawn at random: known by the record it sets aside.
    return ("dead-letter", original_id(o), o.message.cause)


# What an output means, per topic: two outputs with one meaning are one written twice.
MEANINGS: dict[str, Callable[[Output], Hashable]] = {
    ALERT_RAISED.name: lambda o: (
        "raised",
        o.message.patient_pseudonym,
        o.message.rule,
        tuple(o.message.reading_ids),
    ),
    ALERT_UPDATED.name: lambda o: ("updated", o.message.alert_id, o.message.reading_id),
    ALERT_ESCALATED.name: lambda o: ("escalated", o.message.alert_id, o.message.step),
    ALERT_ACKNOWLEDGED.name: lambda o: ("acknowledged", o.message.alert_id),
    ALERT_RESOLVED.name: lambda o: ("resolved", o.message.alert_id),
}
# Fields a service fills from its clock or from where a record landed: never compared.
NOT_COMPARED = (
    "raised_at",
    "measurement_to_alert",
    "updated_at",
    "escalated_at",
    "acknowledged_at",
    "time_to_acknowledge",
    "resolved_at",
    "dead_lettered_at",
    "source_partition",
    "source_offset",
)


def original_id(letter: Output) -> str:
    """The ce_id of the record a dead letter sets aside ("" when it had none)."""
    return letter.message.original_headers.get(env.H_ID, b"").decode(errors="replace")


def content(message: Message) -> bytes:
    """The message without the fields the service stamps from its clock or the offsets."""
    copy = type(message)()
    copy.CopyFrom(message)
    for name in NOT_COMPARED:
        if name in copy.DESCRIPTOR.fields_by_name:
            copy.ClearField(name)
    return copy.SerializeToString(deterministic=True)


@dataclass(frozen=True)
class Expected:
    """One output of the reference: its id (None: drawn at random, not compared) and content."""

    event_id: str | None
    content: bytes


@dataclass
class Reference:
    """What the reference round gave, per kind (an output topic, or DEAD_LETTERS)."""

    kinds: dict[str, dict[Hashable, Expected]] = field(default_factory=dict)
    # Outputs the reference gave twice (by id or by meaning): it is no oracle then.
    repeated: dict[str, int] = field(default_factory=dict)

    def count(self, topics: Iterable[str]) -> int:
        return sum(len(self.kinds.get(topic, {})) for topic in topics)


def ours(
    outputs: dict[str, list[Output]], keys: set[str], record_ids: set[str], dead_letters: str
) -> dict[str, list[Output]]:
    """Per kind, the outputs of this workload: keyed by its subjects, and the dead letters
    of its own records (not the poison records a fault wrote)."""
    mine = {
        topic: [o for o in found if (o.key or b"").decode(errors="replace") in keys]
        for topic, found in outputs.items()
        if topic in MEANINGS
    }
    mine[DEAD_LETTERS] = [o for o in outputs.get(dead_letters, []) if original_id(o) in record_ids]
    return mine


def meaning_of(kind: str) -> Callable[[Output], Hashable]:
    return _dead_letter if kind == DEAD_LETTERS else MEANINGS[kind]


def reference_of(outputs: dict[str, list[Output]]) -> Reference:
    """The oracle from the reference round's outputs (as `ours` gives them)."""
    reference = Reference()
    for kind, found in outputs.items():
        meaning = meaning_of(kind)
        ids = kind != DEAD_LETTERS
        expected: dict[Hashable, Expected] = {}
        for o in found:
            expected.setdefault(
                meaning(o), Expected(o.event_id if ids else None, content(o.message))
            )
        twice = _dup_by_id(found) if ids else 0
        twice += len(found) - len({meaning(o) for o in found})
        reference.kinds[kind] = expected
        if twice:
            reference.repeated[kind] = twice
    return reference


def _dup_by_id(outputs: list[Output]) -> int:
    return sum(n - 1 for n in Counter(o.event_id for o in outputs).values())


def compare(reference: Reference, outputs: dict[str, list[Output]]) -> list[Row]:
    """A row per kind: the faulted round's outputs against the reference's. Lost: a meaning
    the reference has and the round not; duplicated: by id, or a meaning seen twice;
    unexpected: a meaning the reference lacks, or one with another id or content."""
    rows = []
    for kind in sorted(reference.kinds.keys() | outputs.keys(), key=_kind_order):
        expected = reference.kinds.get(kind, {})
        found = outputs.get(kind, [])
        meaning = meaning_of(kind)
        row = Row(f"{label(kind)} as in the reference", len(expected))
        by_meaning = Counter(meaning(o) for o in found)
        row.seen = len(by_meaning.keys() & expected.keys())
        row.lost = len(expected.keys() - by_meaning.keys())
        row.dup_by_id = _dup_by_id(found) if kind != DEAD_LETTERS else 0
        row.dup_by_meaning = sum(n - 1 for k, n in by_meaning.items() if k in expected)
        row.unexpected = sum(1 for o in found if not _as_expected(o, expected.get(meaning(o))))
        rows.append(row)
    return rows


def _as_expected(output: Output, expected: Expected | None) -> bool:
    return (
        expected is not None
        and expected.event_id in (None, output.event_id)
        and expected.content == content(output.message)
    )


def reference_rows(reference: Reference) -> list[Row]:
    """The reference round's own table: what it gave per kind, and anything it gave twice."""
    rows = []
    for kind in sorted(reference.kinds, key=_kind_order):
        n = len(reference.kinds[kind])
        rows.append(Row(f"{label(kind)} (reference)", n, seen=n))
        rows[-1].dup_by_meaning = reference.repeated.get(kind, 0)
    return rows


def label(kind: str) -> str:
    """A kind as the table names it: "alert-raised" for emeuse.chronic.alert-raised.v1."""
    parts = kind.split(".")
    return parts[2] if len(parts) == 4 else kind


def _kind_order(kind: str) -> tuple[int, str]:
    order = [*MEANINGS, DEAD_LETTERS]
    return (order.index(kind) if kind in order else len(order), kind)
