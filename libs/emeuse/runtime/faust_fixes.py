"""Work-arounds for faust-streaming behaviour that loses records, applied once per process.

faust's flow control (`app.flow_control`, a mode FlowControlEvent) clears every stream and
changelog queue it manages each time it is resumed, to drop what was fetched before a
rebalance. But faust resumes it several times after one rebalance (when standby recovery
starts, then again when the worker is ready), as does the watchdog when it resumes a
partition. A record fetched between two of those calls is already behind the consumer's
position: cleared from its agent's queue, it is read again at the next rebalance, or never
if a later record of its partition is committed first (faust's check for a gap before the
handled offsets skips a partition not committed yet, and a gap of one record).
Seen here as an enrolment accepted over gRPC and never applied, after a second instance
joined. Only the first resume after a suspend needs to clear; a resume while records
already flow keeps them (a record fetched twice is handled twice: handlers are idempotent).
"""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent

_resume = FlowControlEvent.resume


def _resume_unless_flowing(self: FlowControlEvent) -> None:
    if self.is_active():
        return  # the queues hold records fetched since the last resume, not stale ones
    _resume(self)


def keep_queued_records_while_flowing() -> None:
    """Make a resume of flow control that is already flowing keep the queues."""
    FlowControlEvent.resume = _resume_unless_flowing  # type: ignore[method-assign]
