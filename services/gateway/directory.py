"""The partners, as this instance read them from the compacted registry topic."""

from __future__ import annotations

import asyncio

import structlog
from google.protobuf.message import DecodeError

from emeuse.partners.v1.partners_pb2 import PartnerRegistered

log = structlog.get_logger("emeuse.gateway.directory")


class PartnerDirectory:
    def __init__(self) -> None:
        self.partners: dict[str, PartnerRegistered] = {}
        self.ready = asyncio.Event()
        # While the registry is read again (after a broker failure), into this copy: the
        # directory in use never goes back to an older registration.
        self._loading: dict[str, PartnerRegistered] | None = None

    def reloading(self) -> None:
        self._loading = {}

    def caught_up(self) -> None:
        if self._loading is not None:
            self.partners, self._loading = self._loading, None

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the registry: the latest registration of a partner wins."""
        target = self._loading if self._loading is not None else self.partners
        if value is None:
            if key:
                target.pop(key.decode(errors="replace"), None)
            return
        try:
            partner = PartnerRegistered.FromString(value)
        except DecodeError:
            log.warning("partner.unreadable")
            return
        if partner.partner_id:
            target[partner.partner_id] = partner

    def active(self, partner_id: str) -> PartnerRegistered | None:
        partner = self.partners.get(partner_id)
        return partner if partner is not None and partner.active else None

    def readers_of(self, event_type: str) -> list[PartnerRegistered]:
        """Active partners granted reading this event type."""
        return [
            p for p in self.partners.values() if p.active and event_type in p.readable_event_types
        ]


def own_event_withheld(partner: PartnerRegistered, source: str) -> bool:
    """Whether the event is one the partner published and asked not to get back
    (`own_events_withheld`): live or replayed, it stays out of its feed."""
    return partner.own_events_withheld and source == f"partner/{partner.partner_id}"
