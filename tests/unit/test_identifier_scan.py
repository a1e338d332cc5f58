"""The scan that runs after the integration tests finds an identifier wherever it hides."""

import json
from datetime import UTC, datetime

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.kernel.framing import pack
from emeuse.kernel.outputs import Origin, SetAside, dead_letter_record
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause, MessageDeadLettered
from emeuse.registry import READING_RECORDED, dead_letter_topic
from emeuse.runtime.identifying import EMAIL, NAME, NIR, PHONE
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import headers_for
from tests.integration.identifier_scan import HOSTILE_SOURCE, findings_in_log, findings_in_record

PATIENT = random_pseudonym()
PATIENT_KEY = PATIENT.encode()


def a_reading(**changes):
    reading = ReadingRecorded(
        reading_id="r-1", patient_pseudonym=PATIENT, loinc_code="2339-0", value=1, unit="g/L"
    )
    reading.measured_at.FromDatetime(datetime(2026, 12, 1, tzinfo=UTC))
    for name, value in changes.items():
        setattr(reading, name, value)
    return reading


def scan(topic, value, key=PATIENT_KEY, headers=None):
    headers = headers if headers is not None else headers_for(READING_RECORDED, PATIENT)
    return [(f.where, f.kind) for f in findings_in_record(topic, 2, 7, key, value, headers)]


def test_a_platform_event_of_opaque_ids_has_no_finding():
    assert (
        scan(READING_RECORDED.name, a_reading(device_id="gf-meter-0007").SerializeToString()) == []
    )


def test_an_identifier_in_a_field_is_found_with_its_place_and_kind():
    value = a_reading(device_id="jean@example.fr").SerializeToString()
    assert scan(READING_RECORDED.name, value) == [
        (f"{READING_RECORDED.name}[2]@7 value.device_id", EMAIL)
    ]


def test_an_identifier_in_a_key_or_header_is_found():
    headers = [*headers_for(READING_RECORDED, PATIENT), ("x-caller", b"Jean Dupont")]
    found = scan(READING_RECORDED.name, a_reading().SerializeToString(), b"0612345678", headers)
    assert [kind for _, kind in found] == [PHONE, NAME]


def test_an_identifier_kept_in_a_dead_letter_is_found():
    # As a dead letter written before originals holding one were withheld.
    value = a_reading(reading_id="185057800608491").SerializeToString()
    letter = MessageDeadLettered(
        cause=DeadLetterCause.DEAD_LETTER_CAUSE_INVALID_EVENT,
        source_topic=READING_RECORDED.name,
        original_key=PATIENT_KEY,
        original_value=value,
        original_headers={"ce_type": READING_RECORDED.type_name.encode()},
    )
    found = scan(dead_letter_topic("chronic").name, letter.SerializeToString(), None, [])
    assert [(w.split(" ", 1)[1], k) for w, k in found] == [("original value.reading_id", NIR)]


def test_a_withheld_dead_letter_has_no_finding():
    value = a_reading(reading_id="185057800608491").SerializeToString()
    aside = SetAside(
        READING_RECORDED.name,
        0,
        1,
        PATIENT.encode(),
        value,
        (),
        DeadLetterCause.DEAD_LETTER_CAUSE_IDENTIFYING_CONTENT,
        "reading_id holds a NIR",
    )
    letter = dead_letter_record(
        Origin("chronic", "emeuse/chronic", "x"), dead_letter_topic("chronic"), aside
    )
    assert scan(letter.topic, letter.value, letter.key, letter.headers) == []


def test_a_changelog_of_json_values_is_scanned_string_by_string():
    value = json.dumps({"contacts": [{"contact_id": "06 12 34 56 78"}], "plan": "cp-1"}).encode()
    assert [kind for _, kind in scan("emeuse-home-state-changelog", value, b"homes\x00x", [])] == [
        PHONE
    ]


def test_a_record_a_test_wrote_as_a_hostile_sender_is_not_the_platforms():
    headers = [("ce_source", HOSTILE_SOURCE), ("ce_subject", b"Jean Dupont")]
    assert scan(READING_RECORDED.name, b"", b"Jean Dupont", headers) == []


def test_a_log_line_is_scanned_value_by_value(tmp_path):
    log = tmp_path / "chronic.log"
    log.write_text(
        json.dumps({"event": "grpc.serving", "address": "127.0.0.1:50051"})
        + "\n"
        + json.dumps({"event": "Group Coordinator Request failed: [Error 15]"})
        + "\n"
        + json.dumps({"event": "reading.recorded", "member_id": "jean@example.fr"})
        + "\n"
        + "Traceback: patient Jean Dupont\n"
        + "I1207 03:30:46.943623   30914 chttp2_transport.cc:1403] ipv4:127.0.0.1:22640: Got"
        " goaway [2] err=UNAVAILABLE:GOAWAY received; Error code: 2; Debug Text: Server shutdown\n"
        + "I1207 03:30:46.943623   30914 chttp2_transport.cc:1403] to jean@example.fr\n"
    )
    found = [(f.where, f.kind) for f in findings_in_log(log)]
    assert found == [
        ("chronic.log:3 line.member_id", EMAIL),
        ("chronic.log:4 line", NAME),
        ("chronic.log:6 line.grpc-core", EMAIL),
    ]


def test_a_compressed_changelog_value_is_read_uncompressed():
    state = {"readings": [{"reading_id": f"r-{n}", "value": 1.5 * n} for n in range(200)]}
    state["readings"][150]["device_id"] = "jean@example.fr"
    packed = pack(json.dumps(state).encode())
    assert packed[:1] == b"\x00"  # compressed: the e-mail is not in clear in the bytes
    found = scan("emeuse-chronic-state-changelog", packed, b"states\x00x", [])
    assert found == [("emeuse-chronic-state-changelog[2]@7 value.readings.device_id", EMAIL)]


def test_a_poison_record_is_left_out_by_its_position_only():
    # Bytes as a chaos round's poison: not protobuf, and here they read as a name.
    value = b"n\x00Jean Dupont\xff"
    at = (READING_RECORDED.name, 2, 7)
    assert scan(READING_RECORDED.name, value) == [(f"{READING_RECORDED.name}[2]@7 value", NAME)]
    assert findings_in_record(*at, PATIENT_KEY, value, [], poison={at}) == []
    # The same bytes one offset further are no poison the test knows of: found.
    elsewhere = findings_in_record(READING_RECORDED.name, 2, 8, PATIENT_KEY, value, [], {at})
    assert [f.kind for f in elsewhere] == [NAME]


def test_a_poison_records_dead_letter_is_scanned_but_for_the_original_it_keeps():
    poison = (READING_RECORDED.name, 2, 7)

    def letter_of(source_offset, reason):
        letter = MessageDeadLettered(
            cause=DeadLetterCause.DEAD_LETTER_CAUSE_UNDECODABLE,
            reason=reason,
            source_topic=READING_RECORDED.name,
            source_partition=2,
            source_offset=source_offset,
            original_value=b"n\x00Jean Dupont\xff",
        )
        return letter.SerializeToString()

    def where(value):
        found = findings_in_record(
            dead_letter_topic("chronic").name, 0, 3, None, value, [], {poison}
        )
        return [f.where.split(" ", 1)[1] for f in found]

    assert where(letter_of(7, "value is not a ReadingRecorded")) == []
    assert where(letter_of(7, "refused for Jean Dupont")) == ["value.reason"]
    assert where(letter_of(8, "value is not a ReadingRecorded")) == ["original value"]
