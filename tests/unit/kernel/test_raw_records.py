"""Kafka v2 batches are read with header keys kept as bytes (kernel/raw_records)."""

from __future__ import annotations

import gzip
import struct

import pytest
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c

from emeuse.kernel.raw_records import RawRecord, RawRecordError, first_record, parse_records
from tests.chaos.poison import encode_record_batch

HEADER = struct.Struct(">qiibIhiqqqhii")
AFTER_CRC = struct.Struct(">hiqqqhii")
POISON_KEY = b"\xff\xfe"
ABORT, COMMIT = 0, 1


def rebuilt(
    batch: bytes,
    *,
    attributes: int,
    records: bytes | None = None,
    count: int | None = None,
    producer_id: int | None = None,
) -> bytes:
    """`batch` with other header fields or records section; its length and CRC made right."""
    base, _, epoch, magic, _, _, *rest = HEADER.unpack_from(batch)
    if count is not None:
        rest[-1] = count
    if producer_id is not None:
        rest[3] = producer_id
    body = batch[HEADER.size :] if records is None else records
    after_crc = AFTER_CRC.pack(attributes, *rest) + body
    prefix = struct.pack(">qiibI", base, 9 + len(after_crc), epoch, magic, calc_crc32c(after_crc))
    return prefix + after_crc


def parsed(data: bytes) -> list[RawRecord]:
    return list(parse_records(data, "emeuse.test.v1", 3))


def test_a_header_key_that_is_not_utf8_is_kept_as_bytes():
    batch = encode_record_batch([(b"key", b"value", [(POISON_KEY, b"x"), (b"ce_id", b"1")])])

    [record] = parsed(batch)

    assert record.headers == ((POISON_KEY, b"x"), (b"ce_id", b"1"))
    assert (record.topic, record.partition, record.key, record.value) == (
        "emeuse.test.v1",
        3,
        b"key",
        b"value",
    )
    assert record.error is None


def test_a_null_key_and_value_are_none():
    [record] = parsed(encode_record_batch([(None, None, [])]))

    assert (record.key, record.value, record.headers) == (None, None, ())


def test_offsets_and_timestamps_count_from_the_batch_header():
    batch = encode_record_batch(
        [(b"a", b"1", []), (b"b", b"2", []), (b"c", b"3", [])],
        base_offset=40,
        timestamp_ms=1_700_000_000_000,
    )

    records = parsed(batch)

    assert [(r.offset, r.key) for r in records] == [(40, b"a"), (41, b"b"), (42, b"c")]
    assert {r.timestamp_ms for r in records} == {1_700_000_000_000}


def test_the_batches_of_one_fetch_are_read_in_order():
    first = encode_record_batch([(b"a", b"1", []), (b"b", b"2", [])], base_offset=0)
    second = encode_record_batch([(b"c", b"3", [(POISON_KEY, b"")])], base_offset=2)

    assert [r.offset for r in parsed(first + second)] == [0, 1, 2]


def test_a_gzip_batch_is_decompressed():
    plain = encode_record_batch([(b"a", b"1", [(POISON_KEY, b"x")]), (b"b", None, [])])
    compressed = rebuilt(plain, attributes=1, records=gzip.compress(plain[HEADER.size :]))

    assert parsed(compressed) == parsed(plain)


def marker(kind: int, *, base_offset: int, producer_id: int = 1) -> bytes:
    """A transaction marker: a control batch whose record's key is (version, type)."""
    record = (struct.pack(">hh", 0, kind), struct.pack(">hi", 0, 0), [])
    batch = encode_record_batch([record], base_offset=base_offset)
    return rebuilt(batch, attributes=0x30, producer_id=producer_id)  # transactional, control


def test_a_control_batch_is_skipped():
    control = marker(COMMIT, base_offset=0)
    data = encode_record_batch([(b"a", b"1", [])], base_offset=1)

    assert [r.offset for r in parsed(control + data)] == [1]


@pytest.mark.parametrize("kept", [5, 12, 70])
def test_a_truncated_last_batch_ends_the_records_quietly(kept):
    first = encode_record_batch([(b"a", b"1", [])], base_offset=0)
    second = encode_record_batch([(b"b", b"2", []), (b"c", b"3", [])], base_offset=1)

    assert [r.offset for r in parsed(first + second[:kept])] == [0]


def test_a_batch_failing_its_crc_is_refused():
    batch = bytearray(encode_record_batch([(b"a", b"1", [])]))
    batch[-1] ^= 0x01

    with pytest.raises(RawRecordError, match="CRC"):
        parsed(bytes(batch))


def test_a_legacy_message_set_is_refused():
    batch = bytearray(encode_record_batch([(b"a", b"1", [])]))
    batch[16] = 1

    with pytest.raises(RawRecordError, match="legacy"):
        parsed(bytes(batch))


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack(">qi", 0, 2) + b"\x00\x00",  # shorter than a batch prefix
        struct.pack(">qiib", 0, 5, 0, 7),  # unknown magic
        struct.pack(">qiib", 0, 5, 0, 2),  # v2 but shorter than its header
    ],
)
def test_garbage_is_refused(garbage):
    with pytest.raises(RawRecordError):
        parsed(garbage)


def test_an_unknown_codec_is_refused():
    batch = encode_record_batch([(b"a", b"1", [])])

    with pytest.raises(RawRecordError, match="codec"):
        parsed(rebuilt(batch, attributes=7))


def test_the_records_before_a_malformed_one_are_read_first():
    batch = rebuilt(
        encode_record_batch([(b"a", b"1", []), (b"b", b"2", [])]), attributes=0, count=3
    )
    records = parse_records(batch, "emeuse.test.v1", 0)

    assert [next(records).key, next(records).key] == [b"a", b"b"]
    with pytest.raises(RawRecordError, match="record 2"):
        next(records)


def test_a_record_longer_than_its_batch_is_refused():
    batch = encode_record_batch([(b"a", b"1", [])])
    records = b"\x7e" + batch[HEADER.size + 1 :]  # a length varint of 63

    with pytest.raises(RawRecordError, match="past the end"):
        parsed(rebuilt(batch, attributes=0, records=records))


def test_aiokafka_own_reader_raises_on_a_header_key_that_is_not_utf8():
    """Why this module exists: aiokafka decodes header keys as it reads a batch."""
    batch = encode_record_batch([(b"good", b"1", []), (b"poison", b"2", [(POISON_KEY, b"x")])])
    aiokafka_batch = MemoryRecords(batch).next_batch()

    assert aiokafka_batch.validate_crc()
    records = iter(aiokafka_batch)
    assert next(records).key == b"good"
    with pytest.raises(UnicodeDecodeError):
        next(records)


def first(data: bytes, offset: int, **options) -> tuple[RawRecord | None, int]:
    return first_record(data, "emeuse.test.v1", 3, offset, **options)


def test_the_record_at_an_offset_inside_a_batch_is_found():
    batch = encode_record_batch([(b"a", b"1", []), (b"b", b"2", []), (b"c", b"3", [])], 10)

    record, offset = first(batch, 11)

    assert record is not None and (record.offset, record.key) == (11, b"b")
    assert offset == 11


def test_a_fetch_of_only_a_marker_gives_the_offset_after_it():
    assert first(marker(COMMIT, base_offset=4), 4) == (None, 5)


def test_an_aborted_transaction_is_passed_over_only_when_reading_committed():
    aborted = rebuilt(
        encode_record_batch([(b"aborted", b"1", [])], base_offset=0), attributes=0x10, producer_id=7
    )
    data = aborted + marker(ABORT, base_offset=1, producer_id=7)
    data += encode_record_batch([(b"after", b"2", [])], base_offset=2)

    committed, _ = first(data, 0, aborted=[(7, 0)])
    uncommitted, _ = first(data, 0, aborted=[(7, 0)], committed_only=False)

    assert committed is not None and (committed.offset, committed.key) == (2, b"after")
    assert uncommitted is not None and (uncommitted.offset, uncommitted.key) == (0, b"aborted")


def test_a_batch_that_cannot_be_read_gives_a_record_known_by_its_place():
    batch = bytearray(encode_record_batch([(b"a", b"1", []), (b"b", b"2", [])], 10))
    batch[-1] ^= 0x01

    record, offset = first(bytes(batch), 11)

    assert record is not None and offset == 11
    assert (record.topic, record.partition, record.offset) == ("emeuse.test.v1", 3, 11)
    assert (record.key, record.value, record.headers) == (None, None, ())
    assert record.error is not None and "CRC" in record.error


def test_the_records_before_a_malformed_one_are_still_found():
    batch = encode_record_batch([(b"a", b"1", []), (b"b", b"2", []), (b"c", b"3", [])], 20, 5)
    batch = rebuilt(batch, attributes=0, records=batch[HEADER.size : -2])  # the third cut short

    found = [first(batch, offset)[0] for offset in (20, 21, 22)]

    assert [(r.offset, r.key, r.error) for r in found if r is not None][:2] == [
        (20, b"a", None),
        (21, b"b", None),
    ]
    unreadable = found[2]
    assert unreadable is not None and (unreadable.offset, unreadable.timestamp_ms) == (22, 5)
    assert unreadable.error is not None and "record 2" in unreadable.error
