"""What the test workers of the watchdog and the faust fixes share (stalled_partition_app,
stalled_recovery_app, second_resume_app): a faust worker of their own on the test broker,
with its data in the temporary folder the test gives (not the working tree)."""

from __future__ import annotations

import os
from typing import Any

import faust

BOOTSTRAP = os.environ["EMEUSE_KAFKA_BOOTSTRAP"]


def worker_app(app_id: str, **options: Any) -> faust.App:
    return faust.App(
        app_id,
        broker=f"kafka://{BOOTSTRAP}",
        store="memory://",
        web_enabled=False,
        datadir=os.environ["TEST_APP_DATADIR"],
        consumer_auto_offset_reset="earliest",
        **options,
    )
