"""A handler changes a copy of the stored state; the stored one (shared by readers and kept
for an aborted transaction) never moves."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from services.chronic.domain.monitoring import (
    DIGEST_BYTES,
    OPEN,
    RECENT_IDS_KEPT,
    RESOLVED,
    AlertState,
    PatientState,
    PendingResult,
    Result,
    decode_state,
    encode_state,
)
from services.chronic.domain.plan import Member

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def stored_state() -> PatientState:
    state = PatientState()
    state.record("34714-6", Result(reading_id="r1", value=2.5, unit="{INR}", measured_at=NOW))
    state.pending_review["r2"] = PendingResult(
        reading_id="r2",
        value=6.0,
        unit="{INR}",
        measured_at=NOW,
        loinc_code="34714-6",
        received_at=NOW,
    )
    alert = AlertState(
        alert_id="a1",
        episode="values",
        loinc_code="34714-6",
        severity="critical",
        rule="threshold.critical_high",
        reason="INR 6",
        territory="55",
        raised_at=NOW,
        reading_ids=["r2"],
        chain=[Member(member_id="gp-1", role=1, rank=1)],
        acknowledge_within_s=1800,
    )
    state.add_alert(alert)
    state.remember("e1")
    return state


def test_changing_the_copy_leaves_the_stored_state_as_it_was() -> None:
    stored = stored_state()
    before = msgspec.to_builtins(stored)
    copy = stored.changed()
    copy.alerts["a1"].status = RESOLVED
    copy.alerts["a1"].reading_ids.append("r3")
    copy.pending_review["r2"].overdue_alerted = True
    copy.record("34714-6", Result(reading_id="r3", value=2.8, unit="{INR}", measured_at=NOW))
    copy.gap_closed_at["34714-6"] = NOW
    copy.remember("e2")
    assert msgspec.to_builtins(stored) == before
    assert stored.alerts["a1"].status == OPEN
    assert copy.alerts["a1"].reading_ids == ["r2", "r3"]


# A state as the earlier version stored it (pydantic's JSON), before MessagePack.
EARLIER_JSON = (
    b'{"latest":{"34714-6":{"reading_id":"r1","value":2.5,"unit":"{INR}",'
    b'"measured_at":"2026-12-01T09:00:00Z"}},"history":{"34714-6":[{"reading_id":"r1",'
    b'"value":2.5,"unit":"{INR}","measured_at":"2026-12-01T09:00:00Z"}]},"pending_review":'
    b'{"r2":{"reading_id":"r2","value":6.0,"unit":"{INR}","measured_at":"2026-12-01T09:00:00Z",'
    b'"loinc_code":"34714-6","received_at":"2026-12-01T09:00:00Z","overdue_alerted":false}},'
    b'"last_measured_at":{"34714-6":"2026-12-01T09:00:00Z"},"alerts":{"a1":{"alert_id":"a1",'
    b'"episode":"values","loinc_code":"34714-6","severity":"critical",'
    b'"rule":"threshold.critical_high","reason":"INR 6","territory":"55","status":"open",'
    b'"raised_at":"2026-12-01T09:00:00Z","reading_ids":["r2"],"chain":[{"member_id":"gp-1",'
    b'"role":1,"rank":1}],"step":0,"acknowledge_within_s":1800.0,'
    b'"next_escalation_at":"2026-12-01T09:00:00Z","acknowledged_by":"","acknowledged_at":null,'
    b'"resolution":0,"resolved_by":"","resolved_at":null,"last_measured_at":null,'
    b'"run_ended":false,"correction":null}},"gap_closed_at":{},"alerts_raised":1,'
    b'"last_alert_id":"a1","seen":["r1"]}'
)


def test_a_state_reads_back_as_it_was_stored() -> None:
    stored = stored_state()
    assert decode_state(encode_state(stored)) == stored


def test_a_state_stored_as_json_by_the_earlier_version_still_reads() -> None:
    earlier = stored_state()
    earlier.alerts["a1"].next_escalation_at = NOW
    earlier.seen = b""
    earlier.remember("r1")
    assert decode_state(EARLIER_JSON) == earlier
    assert earlier.has_seen("r1") and not earlier.has_seen("e1")


def test_a_state_stored_with_its_ids_as_strings_still_reads() -> None:
    listed = msgspec.msgpack.encode({**msgspec.to_builtins(stored_state()), "seen": ["r1", "e1"]})
    state = decode_state(listed)
    assert state.has_seen("r1") and state.has_seen("e1") and not state.has_seen("r2")


def test_ids_seen_are_bounded_and_never_matched_across_two_digests() -> None:
    state = PatientState()
    state.remember(*(f"r-{n}" for n in range(RECENT_IDS_KEPT + 50)))
    assert not state.has_seen("r-49") and state.has_seen("r-50")
    assert state.has_seen(f"r-{RECENT_IDS_KEPT + 49}")
    assert len(state.seen) == RECENT_IDS_KEPT * DIGEST_BYTES
