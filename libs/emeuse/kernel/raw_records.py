"""Records read without aiokafka's record decoder, for dead-lettering what it cannot read.

aiokafka 0.14.0 decodes record header keys as UTF-8 while it fetches (`_read_msg` in
aiokafka/record/default_records.py, and the C extension): one record whose header key is
not UTF-8 raises UnicodeDecodeError out of `getmany()`, outside any handler, and a corrupt
batch raises CorruptRecordException. Neither names the partition nor the offset. This module
parses Kafka v2 record batches itself, keeping header keys as bytes, and fetches one record
at a given offset over aiokafka's low-level client, so the kernel can dead-letter what can
be read of the record and seek past it. Delete it when aiokafka no longer decodes keys.
"""

from __future__ import annotations

import asyncio
import gzip
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from aiokafka import codec, errors
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition

from emeuse.runtime import kafka_clients

# BaseOffset, Length: what frames a batch in a fetch response.
_LOG_OVERHEAD = struct.Struct(">qi")
# PartitionLeaderEpoch, Magic: enough to tell the format apart.
_PREFIX = struct.Struct(">qiib")
# The v2 batch header after the magic byte; the CRC covers everything after it.
_V2_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC_START = struct.calcsize(">qiibI")

_CODEC_MASK = 0x07
_LOG_APPEND_TIME = 0x08
_TRANSACTIONAL = 0x10
_CONTROL = 0x20
_ABORT_MARKER = 0

_ISOLATION_LEVELS = {"read_uncommitted": 0, "read_committed": 1}
_FIRST_FETCH_BYTES = 1 << 20
_RETRY_S = 0.1


class RawRecordError(ValueError):
    """Bytes that are not a well-formed Kafka v2 record batch."""


@dataclass(frozen=True)
class RawRecord:
    """One record as it lies in the log: header keys are bytes, nothing is decoded.

    `error` is set (and key, value and headers are empty) when the batch holding the record
    could not be read: the record is then known by its place only.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[bytes, bytes | None], ...]
    error: str | None = None


@dataclass(frozen=True)
class _Batch:
    base_offset: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    count: int
    body: bytes

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL)


def parse_records(data: bytes, topic: str, partition: int) -> Iterator[RawRecord]:
    """The data records of v2 batches in `data` (a fetch response's record set), in order.

    Control batches are skipped; a truncated last batch, normal at the end of a fetch
    response, ends the iteration quietly. Records before a malformed one are yielded first,
    then RawRecordError is raised.
    """
    for base_offset, frame in _frames(data):
        batch = _read_batch(base_offset, frame)
        if not batch.is_control:
            yield from _records(batch, topic, partition)


async def read_raw_record(
    bootstrap: Sequence[str],
    topic: str,
    partition: int,
    offset: int,
    *,
    timeout_s: float = 10.0,
    isolation_level: str = "read_committed",
    login: Mapping[str, Any] | None = None,
) -> RawRecord | None:
    """The first data record at `offset` or after it, or None when the partition ends first
    (at its last stable offset when reading committed, else at its high watermark).

    Control batches and, when reading committed, aborted transactions are passed over, as
    aiokafka's consumer does. A batch that cannot be parsed gives a record with `error` set,
    at the first offset asked for within it: this never raises for a record's content. It
    raises KafkaError for a broker or network error and TimeoutError after `timeout_s`.

    `login` is the client's security keyword arguments (security_protocol, sasl_...), for a
    reader that logs in as someone else than the process (a partner's settings file); by
    default the process's own (kafka_clients.use).
    """
    if isolation_level not in _ISOLATION_LEVELS:
        raise ValueError(f"isolation_level must be one of {sorted(_ISOLATION_LEVELS)}")
    servers = [bootstrap] if isinstance(bootstrap, str) else list(bootstrap)
    client = AIOKafkaClient(
        bootstrap_servers=servers,
        **(kafka_clients.client_options() if login is None else login),
        client_id="emeuse-raw-records",
        request_timeout_ms=max(1, int(timeout_s * 1000)),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await client.bootstrap()
            return await _fetch_first(
                client, TopicPartition(topic, partition), offset, _ISOLATION_LEVELS[isolation_level]
            )
    finally:
        await client.close()


def first_record(
    data: bytes,
    topic: str,
    partition: int,
    offset: int,
    *,
    aborted: Iterable[tuple[int, int]] = (),
    committed_only: bool = True,
) -> tuple[RawRecord | None, int]:
    """The first data record at `offset` or after it in one fetch's `data`, and its offset;
    else (None, the offset to fetch next). The core of `read_raw_record`, without I/O.

    `aborted` is the fetch response's (producer id, first offset) list: when reading
    committed, those transactions are passed over the way aiokafka's PartitionRecords does,
    so the record found is one its consumer would have returned (or choked on). A batch that
    cannot be read gives a record with `error` set, at the first offset asked for within it.
    """
    pending = sorted(aborted, key=lambda producer_first: producer_first[1])
    aborting: set[int] = set()
    next_offset = offset
    frames = _frames(data)
    while True:
        try:
            base_offset, frame = next(frames)
        except StopIteration:
            return None, next_offset
        except RawRecordError as err:
            return _unreadable(topic, partition, next_offset, -1, err), next_offset
        at = max(offset, base_offset)
        try:
            batch = _read_batch(base_offset, frame)
        except RawRecordError as err:
            return _unreadable(topic, partition, at, -1, err), at
        try:
            if committed_only:
                while pending and pending[0][1] <= batch.base_offset:
                    aborting.add(pending.pop(0)[0])
                if batch.is_control and _is_abort_marker(batch):
                    aborting.discard(batch.producer_id)
                if batch.is_transactional and batch.producer_id in aborting:
                    next_offset = max(next_offset, batch.next_offset)
                    continue
            if batch.is_control or batch.next_offset <= offset:
                next_offset = max(next_offset, batch.next_offset)
                continue
            for record in _records(batch, topic, partition):
                if record.offset >= offset:
                    return record, record.offset
                at = max(at, record.offset + 1)
        except RawRecordError as err:
            return _unreadable(topic, partition, at, batch.first_timestamp, err), at
        next_offset = max(next_offset, batch.next_offset)


async def _fetch_first(
    client: AIOKafkaClient, tp: TopicPartition, offset: int, isolation: int
) -> RawRecord | None:
    position = offset
    max_bytes = _FIRST_FETCH_BYTES
    while True:
        leader = await _leader(client, tp)
        request = FetchRequest(
            0, 1, max_bytes, isolation, [(tp.topic, [(tp.partition, position, max_bytes)])]
        )
        response = await client.send(leader, request)
        # v7+ may refuse the whole request (fetch-session errors), answering no partition.
        request_error = errors.for_code(getattr(response, "error_code", 0))
        if request_error is not errors.NoError:
            raise request_error(f"fetching {tp.topic}[{tp.partition}] at {position}")
        _, error_code, highwater, *part = response.topics[0][1][0]
        error = errors.for_code(error_code)
        if error is errors.OffsetOutOfRangeError:
            earliest = await _earliest_offset(client, leader, tp, isolation)
            if position >= earliest:
                return None
            position = earliest
            continue
        if error is not errors.NoError:
            if not error.retriable:
                raise error(f"fetching {tp.topic}[{tp.partition}] at {position}")
            client.force_metadata_update()
            await asyncio.sleep(_RETRY_S)
            continue
        version = response.API_VERSION
        data: bytes = part[-1] or b""
        # The layouts differ by version (see aiokafka's fetcher); v11 adds a field before data.
        aborted = (part[-3] if version >= 11 else part[-2]) if version >= 4 else None
        end = part[0] if isolation and version >= 4 else highwater
        record, next_position = first_record(
            data,
            tp.topic,
            tp.partition,
            position,
            aborted=aborted or (),
            committed_only=bool(isolation),
        )
        if record is not None:
            return record
        if next_position > position:
            position = next_position
        elif _frame_size(data) > len(data):
            # KIP-74 brokers return an oversized first batch whole; older ones cut it.
            max_bytes = _frame_size(data)
        elif position >= end:
            return None
        else:
            await asyncio.sleep(_RETRY_S)


async def _leader(client: AIOKafkaClient, tp: TopicPartition) -> int:
    while True:
        leader = client.cluster.leader_for_partition(tp)
        if leader is not None and leader >= 0:
            return int(leader)
        await client.force_metadata_update()
        await asyncio.sleep(_RETRY_S)


async def _earliest_offset(
    client: AIOKafkaClient, leader: int, tp: TopicPartition, isolation: int
) -> int:
    earliest = -2
    request = OffsetRequest(-1, isolation, [(tp.topic, [(tp.partition, earliest)])])
    response = await client.send(leader, request)
    _, error_code, *found = response.topics[0][1][0]
    error = errors.for_code(error_code)
    if error is not errors.NoError:
        raise error(f"listing the earliest offset of {tp.topic}[{tp.partition}]")
    # v0 answers a list of offsets, v1+ (timestamp, offset).
    return int(found[0][0] if response.API_VERSION == 0 else found[-1])


def _unreadable(
    topic: str, partition: int, offset: int, timestamp_ms: int, err: Exception
) -> RawRecord:
    return RawRecord(topic, partition, offset, timestamp_ms, None, None, (), str(err))


def _is_abort_marker(batch: _Batch) -> bool:
    # A control record's key is (version: int16, type: int16); type 0 aborts, 1 commits.
    for record in _records(batch, "", -1):
        key = record.key or b""
        if len(key) < 4:
            raise RawRecordError(f"control record at offset {record.offset} has no type")
        return struct.unpack_from(">hh", key)[1] == _ABORT_MARKER
    raise RawRecordError(f"control batch at offset {batch.base_offset} has no record")


def _frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(base offset, whole batch) for each complete batch; a cut last one is left out."""
    pos = 0
    while len(data) - pos >= _LOG_OVERHEAD.size:
        base_offset, length = _LOG_OVERHEAD.unpack_from(data, pos)
        if length < _PREFIX.size - _LOG_OVERHEAD.size:
            raise RawRecordError(f"batch at offset {base_offset} has a length of {length}")
        end = pos + _LOG_OVERHEAD.size + length
        if end > len(data):
            return
        yield base_offset, data[pos:end]
        pos = end


def _frame_size(data: bytes) -> int:
    """The size of the first batch in `data`, as a fetch's max_bytes (0 when unknown)."""
    if len(data) < _LOG_OVERHEAD.size:
        return 0
    return int(min(_LOG_OVERHEAD.size + _LOG_OVERHEAD.unpack_from(data)[1], 2**31 - 1))


def _read_batch(base_offset: int, frame: bytes) -> _Batch:
    magic = _PREFIX.unpack_from(frame)[3]
    if magic in (0, 1):
        raise RawRecordError(
            f"batch at offset {base_offset} is in the legacy message format (magic {magic}),"
            " which is not read here"
        )
    if magic != 2:
        raise RawRecordError(f"batch at offset {base_offset} has an unknown magic {magic}")
    if len(frame) < _V2_HEADER.size:
        raise RawRecordError(f"batch at offset {base_offset} is shorter than its header")
    (_, _, _, _, crc, attributes, last_delta, first_ts, max_ts, producer_id, _, _, count) = (
        _V2_HEADER.unpack_from(frame)
    )
    if calc_crc32c(frame[_CRC_START:]) != crc:
        raise RawRecordError(f"batch at offset {base_offset} fails its CRC-32C check")
    if count < 0 or last_delta < 0:
        raise RawRecordError(
            f"batch at offset {base_offset} counts {count} records to delta {last_delta}"
        )
    return _Batch(
        base_offset,
        attributes,
        last_delta,
        first_ts,
        max_ts,
        producer_id,
        count,
        frame[_V2_HEADER.size :],
    )


def _decompress(batch: _Batch) -> bytes:
    kind = batch.attributes & _CODEC_MASK
    if kind == 0:
        return batch.body
    if kind == 1:
        try:
            return gzip.decompress(batch.body)
        except (OSError, EOFError, zlib.error) as err:
            raise RawRecordError(f"batch at offset {batch.base_offset}: gzip: {err}") from err
    codecs: dict[int, tuple[str, Callable[[], bool], Callable[[bytes], bytes]]] = {
        2: ("snappy", codec.has_snappy, codec.snappy_decode),
        3: ("lz4", codec.has_lz4, codec.lz4_decode),
        4: ("zstd", codec.has_zstd, codec.zstd_decode),
    }
    if kind not in codecs:
        raise RawRecordError(f"batch at offset {batch.base_offset} has unknown codec {kind}")
    name, available, decode = codecs[kind]
    if not available():
        raise RawRecordError(
            f"batch at offset {batch.base_offset} is {name}-compressed and cramjam,"
            " which aiokafka decompresses it with, is not installed"
        )
    try:
        return decode(batch.body)
    except Exception as err:  # each codec library raises its own errors
        raise RawRecordError(f"batch at offset {batch.base_offset}: {name}: {err}") from err


def _records(batch: _Batch, topic: str, partition: int) -> Iterator[RawRecord]:
    reader = _Reader(_decompress(batch), batch.base_offset)
    for index in range(batch.count):
        reader.record = index
        length = reader.varint()
        if length < 0:
            reader.fail(f"has a length of {length}")
        end = reader.pos + length
        if end > reader.end:
            reader.fail("runs past the end of its batch")
        outer_end, reader.end = reader.end, end
        reader.take(1)  # record attributes: unused
        timestamp_delta = reader.varint()
        offset_delta = reader.varint()
        key = reader.nullable_bytes()
        value = reader.nullable_bytes()
        header_count = reader.varint()
        if header_count < 0:
            reader.fail(f"counts {header_count} headers")
        headers = []
        for _ in range(header_count):
            header_key = reader.nullable_bytes()
            if header_key is None:
                reader.fail("has a null header key")
            headers.append((header_key, reader.nullable_bytes()))
        if reader.pos != end:
            reader.fail(f"leaves {end - reader.pos} bytes unread")
        reader.end = outer_end
        if batch.attributes & _LOG_APPEND_TIME:
            timestamp_ms = batch.max_timestamp
        else:
            timestamp_ms = batch.first_timestamp + timestamp_delta
        yield RawRecord(
            topic=topic,
            partition=partition,
            offset=batch.base_offset + offset_delta,
            timestamp_ms=timestamp_ms,
            key=key,
            value=value,
            headers=tuple(headers),
        )
    if reader.pos != len(reader.data):
        raise RawRecordError(
            f"batch at offset {batch.base_offset} has {len(reader.data) - reader.pos} bytes"
            f" after its {batch.count} records"
        )


class _Reader:
    """Bounds-checked reads of the varint-framed fields of one batch's records."""

    def __init__(self, data: bytes, base_offset: int) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.base_offset = base_offset
        self.record = 0

    def fail(self, problem: str) -> NoReturn:
        raise RawRecordError(
            f"record {self.record} of the batch at offset {self.base_offset} {problem}"
        )

    def take(self, size: int) -> bytes:
        if self.pos + size > self.end:
            self.fail("is cut short")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def varint(self) -> int:
        # Zigzag-encoded, at most 10 bytes for a 64-bit value.
        value = 0
        for shift in range(0, 70, 7):
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (value >> 1) ^ -(value & 1)
        self.fail("has a varint longer than 10 bytes")

    def nullable_bytes(self) -> bytes | None:
        size = self.varint()
        if size < -1:
            self.fail(f"has a field of length {size}")
        return None if size == -1 else self.take(size)
