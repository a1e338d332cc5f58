"""A partner app whose reading handler always fails, for the dead-letter test."""

from __future__ import annotations

from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded
from emeuse.partner import Envelope, PartnerApp

failing = PartnerApp()


@failing.handles(ReadingRecorded)
async def on_reading(event: Envelope, reading: ReadingRecorded) -> None:
    raise RuntimeError("device cloud down")
