"""Poison records: a Kafka v2 record batch built by hand, so a header key can be any bytes.

aiokafka's and kafka-python's producers encode header keys from str, so neither can write
the record that crashes aiokafka's fetcher (a non-UTF-8 header key); this module encodes the
batch itself and sends it with a raw ProduceRequest. Used by tests and `make chaos`.
"""

from __future__ import annotations

import asyncio
import struct
import time

from aiokafka import errors
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition

Header = tuple[bytes, bytes]
Record = tuple[bytes | None, bytes | None, list[Header]]

# Attributes .. record count: the part of the v2 batch header the CRC covers.
_AFTER_CRC = struct.Struct(">hiqqqhii")
_NO_PRODUCER = -1


def encode_record_batch(
    records: list[Record], base_offset: int = 0, timestamp_ms: int | None = None
) -> bytes:
    """A valid uncompressed v2 batch (magic 2, CreateTime, no producer) of `records`.

    Each record is (key, value, headers); header keys are written as given, UTF-8 or not.
    The broker assigns the real offsets; `base_offset` matters to a parser's tests.
    """
    if not records:
        raise ValueError("a record batch holds at least one record")
    timestamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    body = b"".join(_record(delta, *record) for delta, record in enumerate(records))
    after_crc = (
        _AFTER_CRC.pack(
            0,  # attributes: no codec, CreateTime, not transactional, not control
            len(records) - 1,
            timestamp,
            timestamp,
            _NO_PRODUCER,
            -1,  # producer epoch
            -1,  # base sequence
            len(records),
        )
        + body
    )
    length = 4 + 1 + 4 + len(after_crc)  # leader epoch, magic, CRC, the rest
    return struct.pack(">qiibI", base_offset, length, -1, 2, calc_crc32c(after_crc)) + after_crc


def send_poison_record(
    bootstrap: str,
    topic: str,
    partition: int,
    *,
    key: bytes,
    value: bytes,
    headers: list[Header],
) -> int:
    """Append one record with these exact bytes to `topic`[`partition`] (acks=all): its offset."""
    batch = encode_record_batch([(key, value, headers)])
    return asyncio.run(_produce(bootstrap, TopicPartition(topic, partition), batch))


async def _produce(bootstrap: str, tp: TopicPartition, batch: bytes) -> int:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, client_id="emeuse-chaos")
    try:
        async with asyncio.timeout(30):
            await client.bootstrap()
            while (leader := client.cluster.leader_for_partition(tp)) in (None, -1):
                await client.force_metadata_update()
                await asyncio.sleep(0.1)
            request = ProduceRequest(None, -1, 10_000, [(tp.topic, [(tp.partition, batch)])])
            response = await client.send(leader, request)
    finally:
        await client.close()
    _, error_code, offset, *_ = response.topics[0][1][0]
    error = errors.for_code(error_code)
    if error is not errors.NoError:
        raise error(f"producing to {tp.topic}[{tp.partition}]")
    return int(offset)


def _varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def _nullable(field: bytes | None) -> bytes:
    return _varint(-1) if field is None else _varint(len(field)) + field


def _record(delta: int, key: bytes | None, value: bytes | None, headers: list[Header]) -> bytes:
    fields = (
        b"\x00"  # attributes
        + _varint(0)  # timestamp delta
        + _varint(delta)
        + _nullable(key)
        + _nullable(value)
        + _varint(len(headers))
        + b"".join(_nullable(h_key) + _nullable(h_value) for h_key, h_value in headers)
    )
    return _varint(len(fields)) + fields
