"""The reference round as the oracle (tests/chaos/oracle.py): a faulted round that gives the
reference's outputs passes, whatever the times the service stamped; a lost output, one
written twice (same id, or same meaning under another id), one with another id or content,
or one the reference never gave is counted."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message

from emeuse.chronic.v1.chronic_events_pb2 import (
    AlertRaised,
    AlertResolution,
    AlertResolved,
    AlertUpdated,
)
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import ALERT_RAISED, ALERT_RESOLVED, ALERT_UPDATED, TopicSpec
from emeuse.runtime import envelope as env
from tests.chaos.kafka_io import Output
from tests.chaos.oracle import compare, ours, reference_of, reference_rows

PATIENT = "psn-0123456789abcdef0123456789abcdef"
OTHER = "psn-fedcba9876543210fedcba9876543210"
LETTERS = "emeuse.chronic.dead-letter.v1"


def output(spec: TopicSpec | str, key: str, event_id: str, message: Message, offset: int = 0):
    topic = spec if isinstance(spec, str) else spec.name
    return Output(topic, 0, offset, key.encode(), event_id, message)


def raised(alert_id: str, reading: str, at: int = 0) -> AlertRaised:
    message = AlertRaised(
        alert_id=alert_id,
        patient_pseudonym=PATIENT,
        rule="threshold.critical_high",
        reason="34714-6 6.1 {INR} above 5",
        reading_ids=[reading],
        loinc_code="34714-6",
    )
    message.raised_at.FromDatetime(datetime(2026, 12, 7, 21, 0, at, tzinfo=UTC))
    message.measurement_to_alert.FromSeconds(100 + at)
    return message


def letter(record_id: str, offset: int, at: int = 0) -> MessageDeadLettered:
    message = MessageDeadLettered(
        cause=DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE,
        reason="value is not a emeuse.chronic.v1.ReadingRecorded",
        consumer="chronic",
        source_topic="emeuse.chronic.reading-recorded.v1",
        source_offset=offset,
        original_headers={env.H_ID: record_id.encode()},
    )
    message.dead_lettered_at.FromDatetime(datetime(2026, 12, 7, 21, 0, at, tzinfo=UTC))
    return message


def reference_run(at: int = 0, offset: int = 10) -> dict[str, list[Output]]:
    """What a fault-free round gave: an alert, a reading joining it, the alert resolved, and
    a malformed record dead-lettered (its letter's id drawn at random)."""
    update = AlertUpdated(alert_id="a-1", patient_pseudonym=PATIENT, reading_id="r-2")
    update.updated_at.FromDatetime(datetime(2026, 12, 7, 21, 0, at, tzinfo=UTC))
    resolved = AlertResolved(
        alert_id="a-1",
        patient_pseudonym=PATIENT,
        resolution=AlertResolution.ALERT_RESOLUTION_SUPERSEDED,
    )
    return {
        ALERT_RAISED.name: [output(ALERT_RAISED, PATIENT, "a-1", raised("a-1", "r-1", at))],
        ALERT_UPDATED.name: [output(ALERT_UPDATED, PATIENT, "u-1", update)],
        ALERT_RESOLVED.name: [output(ALERT_RESOLVED, PATIENT, "x-1", resolved)],
        LETTERS: [output(LETTERS, PATIENT, f"dl-{at}", letter("rec-9", offset, at))],
    }


def mine(found: dict[str, list[Output]]) -> dict[str, list[Output]]:
    return ours(found, {PATIENT}, {"rec-1", "rec-2", "rec-9"}, LETTERS)


def faults(rows) -> dict[str, tuple[int, int, int, int, int]]:
    return {r.what: (r.seen, r.lost, r.dup_by_id, r.dup_by_meaning, r.unexpected) for r in rows}


def test_the_same_outputs_stamped_at_other_times_and_offsets_pass() -> None:
    reference = reference_of(mine(reference_run()))
    rows = compare(reference, mine(reference_run(at=30, offset=4711)))
    assert all(row.ok for row in rows)
    assert [r.expected for r in rows] == [1, 1, 1, 1]


def test_a_lost_output_is_counted_lost() -> None:
    reference = reference_of(mine(reference_run()))
    run = reference_run()
    run[ALERT_UPDATED.name] = []
    rows = faults(compare(reference, mine(run)))
    assert rows["alert-updated as in the reference"] == (0, 1, 0, 0, 0)


def test_an_output_written_twice_is_a_duplicate_by_id_and_by_meaning() -> None:
    reference = reference_of(mine(reference_run()))
    run = reference_run()
    run[ALERT_RAISED.name] *= 2
    rows = faults(compare(reference, mine(run)))
    assert rows["alert-raised as in the reference"] == (1, 0, 1, 1, 0)


def test_the_same_alert_under_another_id_is_a_duplicate_by_meaning_and_unexpected() -> None:
    reference = reference_of(mine(reference_run()))
    run = reference_run()
    run[ALERT_RAISED.name].append(output(ALERT_RAISED, PATIENT, "a-2", raised("a-2", "r-1")))
    rows = faults(compare(reference, mine(run)))
    # Its content names another alert id too: unexpected, beside the duplicate.
    assert rows["alert-raised as in the reference"] == (1, 0, 0, 1, 1)


def test_other_content_under_the_same_id_is_unexpected() -> None:
    reference = reference_of(mine(reference_run()))
    run = reference_run()
    changed = raised("a-1", "r-1")
    changed.reason = "another reason"
    run[ALERT_RAISED.name] = [output(ALERT_RAISED, PATIENT, "a-1", changed)]
    rows = faults(compare(reference, mine(run)))
    assert rows["alert-raised as in the reference"] == (1, 0, 0, 0, 1)


def test_an_output_the_reference_never_gave_is_unexpected() -> None:
    reference = reference_of(mine(reference_run()))
    run = reference_run()
    run[ALERT_RAISED.name].append(output(ALERT_RAISED, PATIENT, "a-3", raised("a-3", "r-3")))
    rows = faults(compare(reference, mine(run)))
    assert rows["alert-raised as in the reference"] == (1, 0, 0, 0, 1)


def test_a_record_of_the_workload_dead_lettered_only_under_faults_is_unexpected() -> None:
    reference = reference_of(mine(reference_run()))
    run = reference_run()
    run[LETTERS].append(output(LETTERS, PATIENT, "dl-x", letter("rec-2", 11)))
    rows = faults(compare(reference, mine(run)))
    assert rows["dead letters as in the reference"] == (1, 0, 0, 0, 1)


def test_a_dead_letter_written_twice_is_a_duplicate_whatever_its_random_id() -> None:
    reference = reference_of(mine(reference_run()))
    run = reference_run()
    run[LETTERS].append(output(LETTERS, PATIENT, "dl-again", letter("rec-9", 10)))
    rows = faults(compare(reference, mine(run)))
    assert rows["dead letters as in the reference"] == (1, 0, 0, 1, 0)


def test_poison_letters_and_other_keys_are_not_the_workloads() -> None:
    run = reference_run()
    run[LETTERS].append(output(LETTERS, PATIENT, "dl-p", letter("poison-1", 12)))
    run[ALERT_RAISED.name].append(output(ALERT_RAISED, OTHER, "a-9", raised("a-9", "r-9")))
    assert mine(run) == mine(reference_run())


def test_a_reference_that_wrote_an_output_twice_fails_its_own_table() -> None:
    run = reference_run()
    run[ALERT_UPDATED.name] *= 2
    rows = faults(reference_rows(reference_of(mine(run))))
    assert rows["alert-updated (reference)"] == (1, 0, 0, 2, 0)
    assert rows["alert-raised (reference)"] == (1, 0, 0, 0, 0)
