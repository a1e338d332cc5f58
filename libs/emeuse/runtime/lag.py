"""Consumer lag per assigned partition, for the emeuse_consumer_lag gauge."""

from __future__ import annotations

import faust

from emeuse.runtime import metrics


async def record_consumer_lag(app: faust.App, service: str) -> None:
    """Set the gauge to high-water mark minus committed offset for each assigned partition."""
    consumer = app.consumer
    # faust keeps the last committed offset per partition; the gauge reads it, no broker call.
    committed = getattr(consumer, "_committed_offset", {})
    for tp in consumer.assignment():
        try:
            highwater = consumer.highwater(tp)
        except KeyError:  # no fetch from this partition yet
            continue
        if highwater is None:
            continue
        done = committed.get(tp)
        lag = highwater - (done + 1 if done is not None else 0)
        metrics.CONSUMER_LAG.labels(service, tp.topic, str(tp.partition)).set(max(lag, 0))
