"""Partner apps for the integration tests: one whose reading handler always fails (dead
letters), one that says what it handled and what it was told it could not read."""

from __future__ import annotations

import structlog

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.partner import Envelope, PartnerApp, Unreadable

failing = PartnerApp()


@failing.handles(ReadingRecorded)
async def on_reading(event: Envelope, reading: ReadingRecorded) -> None:
    raise RuntimeError("device cloud down")


reporting = PartnerApp()
log = structlog.get_logger("partner_apps.reporting")


@reporting.handles(ReadingRecorded)
async def note_reading(event: Envelope, reading: ReadingRecorded) -> None:
    log.info("reading.handled", reading_id=reading.reading_id)


@reporting.on_unreadable
async def note_unreadable(record: Unreadable) -> None:
    log.info(
        "unreadable.reported",
        unreadable_topic=record.topic,
        unreadable_partition=record.partition,
        unreadable_offset=record.offset,
        reason=record.reason,
    )
