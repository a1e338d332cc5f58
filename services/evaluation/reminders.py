"""Screening and vaccination reminders acted on: an action counts once its person was sent
a reminder of the same series no later than the action was done.

A reminder sent is prevention's first delivery request of a reminder message
(`message-delivery-requested`, attempt 1, a reminder series as `programme`); an action is a
`prevention-action-recorded` (prevention's API or a partner through the gateway). Both are
keyed by the person's pseudonym, so each person's reminders and actions are on one
partition: `person_reminders` keeps, per person, the first reminder sent of each series,
the actions not counted yet (the last 20) with the cells they belong to, and the last 20
action ids counted (an action recorded again counts once).

The two are on two topics, and the kernel orders records within a topic only: reading
every topic from the start (a rebuild), an action may come before its reminder. An action
whose reminder is not known yet is kept; a reminder read later, sent no later than the
action, counts it in the action's cells. So the figure does not depend on which topic was
read first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emeuse.kernel.tx import Tx
from emeuse.prevention.v1.prevention_events_pb2 import (
    MessageDeliveryRequested,
    PreventionActionRecorded,
)
from services.prevention.domain.actions import KIND_OF_SERIES, check_action, check_done_by

REMINDERS = "person_reminders"
ACTED_ON = "prevention.reminders_acted_on"
SENT = "prevention.reminders_sent"
# The national programmes' reminder series (services/prevention/domain/programmes.py).
SERIES = frozenset(KIND_OF_SERIES)
# A person answers a few reminders a year; older uncounted actions are forgotten.
KEPT = 20
# A cell of an action: (experiment, territory, period).
ActionCell = tuple[str, str, str]


@dataclass
class Followed:
    """What a prevention event adds: the series counted in the event's own cells (a reminder
    sent, or an action whose reminder is known), and the earlier actions its reminder
    now counts, each with its cells."""

    own: list[tuple[str, str]] = field(default_factory=list)
    late: list[tuple[list[ActionCell], str]] = field(default_factory=list)


def follow(
    message: Any, tx: Tx, own_cells: list[ActionCell], recorded: datetime | None = None
) -> Followed:
    if isinstance(message, MessageDeliveryRequested):
        return _reminder(message, tx)
    if isinstance(message, PreventionActionRecorded):
        return _action(message, tx, own_cells, recorded)
    return Followed()


def _reminder(message: MessageDeliveryRequested, tx: Tx) -> Followed:
    if message.attempt != 1 or message.programme not in SERIES:
        return Followed()  # another channel tried for the same reminder, or not a reminder
    person, series = message.person_pseudonym, message.programme
    at_ms = message.requested_at.ToMilliseconds()
    state: dict[str, Any] = tx.get(REMINDERS, person) or {}
    first: dict[str, int] = state.get("first", {})
    followed = Followed(own=[(SENT, series)])
    counted: list[str] = state.get("counted", [])
    still = []
    for action in state.get("waiting", []):
        if action["series"] == series and at_ms <= action["at_ms"]:
            cells = [(c[0], c[1], c[2]) for c in action["cells"]]
            followed.late.append((cells, series))
            counted = [*counted, action["id"]][-KEPT:]
        else:
            still.append(action)
    if series not in first or at_ms < first[series]:
        first = {**first, series: at_ms}
    tx.put(REMINDERS, person, {"first": first, "waiting": still, "counted": counted})
    return followed


def _action(
    message: PreventionActionRecorded,
    tx: Tx,
    own_cells: list[ActionCell],
    recorded: datetime | None,
) -> Followed:
    # One that answers no reminder, or said done after it was recorded, is set aside with
    # the reason (the kernel's dead letters); the event's own time keeps a rebuild the same.
    check_action(message)
    if recorded is not None:
        check_done_by(message, recorded)
    person, series = message.person_pseudonym, message.programme
    state: dict[str, Any] = tx.get(REMINDERS, person) or {}
    counted: list[str] = state.get("counted", [])
    waiting: list[dict[str, Any]] = state.get("waiting", [])
    if message.action_id in counted or any(a["id"] == message.action_id for a in waiting):
        return Followed()  # recorded again (a call asked again, a partner's retry)
    at_ms = message.acted_at.ToMilliseconds()
    first = state.get("first", {}).get(series)
    if first is not None and first <= at_ms:
        counted = [*counted, message.action_id][-KEPT:]
        tx.put(REMINDERS, person, {**state, "counted": counted})
        return Followed(own=[(ACTED_ON, series)])
    # No reminder of the series known before it (yet, in a rebuild; or never sent).
    action = {
        "id": message.action_id,
        "series": series,
        "at_ms": at_ms,
        "cells": [list(c) for c in own_cells],
    }
    tx.put(REMINDERS, person, {**state, "waiting": [*waiting, action][-KEPT:]})
    return Followed()
