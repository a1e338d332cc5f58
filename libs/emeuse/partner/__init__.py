"""The partner SDK: consume the events a partner may read, typed, with their envelope.

    from emeuse.partner import Envelope, PartnerApp
    from emeuse.chronic.v1.chronic_events_pb2 import ReadingRecorded

    app = PartnerApp("glucoflow")

    @app.handles(ReadingRecorded)
    async def on_reading(event: Envelope, reading: ReadingRecorded) -> None:
        ...

Run it with `emeuse partner run mymodule:app`. The guide is docs/partners.md.
"""

from emeuse.event.v1.envelope_pb2 import EventEnvelope as Envelope
from emeuse.partner.app import PartnerApp
from emeuse.partner.dispatch import Reject
from emeuse.partner.inbound import PublishError
from emeuse.partner.settings import RetryPolicy
from emeuse.runtime.unreadable import Unreadable

__all__ = ["Envelope", "PartnerApp", "PublishError", "Reject", "RetryPolicy", "Unreadable"]
