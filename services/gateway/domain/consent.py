"""A patient's consents to partners, with their history, kept in the `patient_to_consents`
table: what stood when an event happened, and what stands now."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Change(BaseModel):
    # When it took effect, in the order the gateway handled changes (never before the
    # previous one); `stated_at` is the time the change itself carries.
    at: datetime
    granted: bool
    stated_at: datetime | None = None
    # For a grant: from when it covers the patient's data, as the patient agreed (e.g. the
    # start of the care episode); None: from `at`.
    covers_from: datetime | None = None

    @property
    def start(self) -> datetime:
        return self.covers_from if self.covers_from is not None else self.at


class ConsentBook(BaseModel):
    """Changes per "<partner>|<purpose>", in the order they were handled."""

    changes: dict[str, list[Change]] = Field(default_factory=dict)

    @staticmethod
    def key(partner_id: str, purpose: str) -> str:
        return f"{partner_id}|{purpose}"

    def record(
        self,
        partner_id: str,
        purpose: str,
        at: datetime,
        granted: bool,
        covers_from: datetime | None = None,
    ) -> bool:
        """Add a change; False when it is already there (a redelivery).

        The last change handled is the one that stands: a withdrawal stamped earlier than
        the grant before it (another instance's clock) still withdraws. Its effective time
        is never before the previous change's, so "stood when the event happened" follows
        the same order.
        """
        history = self.changes.setdefault(self.key(partner_id, purpose), [])
        if any(c.stated_at == at and c.granted == granted for c in history):
            return False
        effective = max(at, history[-1].at) if history else at
        history.append(
            Change(
                at=effective,
                granted=granted,
                stated_at=at,
                covers_from=covers_from if granted else None,
            )
        )
        return True

    def stands(self, partner_id: str, purpose: str, at: datetime | None = None) -> bool:
        """Whether consent stood at `at` (now, when None): the last change by then granted."""
        history = self.changes.get(self.key(partner_id, purpose), [])
        standing = [c for c in history if at is None or c.at <= at]
        return bool(standing) and standing[-1].granted

    def covers(self, partner_id: str, purpose: str, event_at: datetime) -> bool:
        """Whether a grant covers an event that happened at `event_at`: from the grant's
        start (`covers_from`, else when it took effect) until the next withdrawal. Without
        `covers_from` this is "consent stood when the event happened"."""
        history = self.changes.get(self.key(partner_id, purpose), [])
        for index, change in enumerate(history):
            if not change.granted or event_at < change.start:
                continue
            ended = next((c.at for c in history[index + 1 :] if not c.granted), None)
            if ended is None or event_at < ended:
                return True
        return False

    def allows(self, partner_id: str, purposes: list[str], event_at: datetime) -> bool:
        """A partner may receive the patient's event when, for one of its purposes, a grant
        covers it (it stood when the event happened, or covers from a date before it) and
        consent still stands now (a withdrawal stops everything handled after it, past
        events included)."""
        return any(
            self.stands(partner_id, purpose) and self.covers(partner_id, purpose, event_at)
            for purpose in purposes
        )

    def refuses_inbound(
        self, partner_id: str, purposes: list[str], event_at: datetime
    ) -> str | None:
        """Why the partner may not send the platform this patient's event that happened at
        `event_at`, or None when it may. The rule of its feed (`allows`): a grant of one of
        its purposes covers when the event happened, and consent stands as the gateway
        handles it. So a withdrawal stops what the partner sends after it, readings it
        took before included, and an event that happened before a grant is refused unless
        the grant covers from a date before it (`covers_from`)."""
        if self.allows(partner_id, purposes, event_at):
            return None
        if not any(self.changes.get(self.key(partner_id, p)) for p in purposes):
            return f"no consent: the patient has not consented to partner {partner_id!r}"
        if not any(self.stands(partner_id, p) for p in purposes):
            return f"no consent: the patient withdrew consent to partner {partner_id!r}"
        return (
            f"no consent: the patient's consent to partner {partner_id!r} does not cover "
            f"when the event happened ({event_at:%Y-%m-%dT%H:%M:%SZ}): it covers from when "
            "it was given, or from its covers_from"
        )

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> ConsentBook:
        return cls.model_validate(data or {})
