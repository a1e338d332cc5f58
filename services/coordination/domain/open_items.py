"""What is still open in a person's path, kept beside the bounded entries.

A timeline keeps each axis's last entries for a coordinator to read; an alert raised long
ago and not resolved must still weigh in the person's urgency however many entries came
after it. So each entry also updates the person's open items (the timeline value's `open`
field), which the risk rules read (problems.py) instead of the entries:

- `alerts`, `requests`, `incidents`: alert, request and incident ids to when they opened
  and their code (severity, flagged, kind); an item leaves when its closing event comes
  (resolved, booked or withdrawn).
- `recent`: facts that count for a window of time (a missed consultation or a programme
  withdrawn for 30 days, a fall or a missed visit for 7 days); dropped once the window
  has passed.
- `receipts`: the person's last UNREACHABLE_AFTER message receipts by time.

So the field holds as many items as the person has open, and evicting old entries never
changes the answer. An entry the timeline leaves out (read twice, or older than a full
axis) opens nothing: it may be a copy of one whose item has closed since. A closing entry
closes whatever the timeline does with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.coordination.domain.timeline import Entry, Timeline, add, entries, order

DAY_MS = 24 * 3600 * 1000
WEEK_MS, MONTH_MS = 7 * DAY_MS, 30 * DAY_MS
# Consecutive failed receipts after which a person counts as unreachable.
UNREACHABLE_AFTER = 3
# Facts that count for a window after they happened: the window's length.
WINDOWS = {"no_show": MONTH_MS, "withdrawn": MONTH_MS, "fall": WEEK_MS, "visit_missed": WEEK_MS}

OpenItems = dict[str, Any]


def empty() -> OpenItems:
    return {"alerts": {}, "requests": {}, "incidents": {}, "recent": [], "receipts": []}


def _closed(kept: Iterable[Entry], entry: Entry) -> bool:
    """The item the entry would open is already closed by a kept entry (the closing event
    was read first: access's arrive one hop later)."""
    subject = entry["subject"]
    for e in kept:
        kind = e["kind"]
        if (
            (kind == "alert_resolved" and e["subject"] == subject)
            or (kind == "incident_resolved" and e["subject"] == subject)
            or (kind == "request_withdrawn" and e["subject"] == subject)
            or (kind == "slot_booked" and e["related"] == subject)
        ):
            return True
    return False


def _fact(entry: Entry) -> str:
    """The windowed fact an entry is ("" for none)."""
    kind, code_ = entry["kind"], entry["code"]
    if kind == "consultation_status_changed" and code_ == "no_show":
        return "no_show"
    if kind == "programme_ended" and entry["detail"] == "withdrawn":
        return "withdrawn"
    if kind == "incident_raised" and code_ in ("fall", "visit_missed"):
        return code_
    return ""


def _open(items: OpenItems, entry: Entry, kept: list[Entry]) -> None:
    kind, subject, at = entry["kind"], entry["subject"], int(entry["at"])
    fact = _fact(entry)
    if fact:
        recent = items["recent"]
        if all(r["id"] != entry["id"] for r in recent):
            recent.append({"fact": fact, "id": entry["id"], "subject": subject, "at": at})
    if kind == "message_receipt":
        receipts = items["receipts"]
        receipts.append({"id": entry["id"], "subject": subject, "at": at, "code": entry["code"]})
        receipts.sort(key=order)
        del receipts[:-UNREACHABLE_AFTER]
    if kind not in ("alert_raised", "incident_raised", "consultation_requested", "request_flagged"):
        return
    if _closed(kept, entry):
        return
    if kind == "alert_raised":
        items["alerts"][subject] = {"at": at, "code": entry["code"]}
    elif kind == "incident_raised":
        items["incidents"][subject] = {"at": at, "code": entry["code"]}
    else:
        request = items["requests"].setdefault(subject, {"at": at, "flagged": False})
        if kind == "consultation_requested":
            request["at"] = at  # a request flagged before it was read opened when asked
        else:
            request["flagged"] = True


def _close(items: OpenItems, entry: Entry) -> bool:
    kind, subject = entry["kind"], entry["subject"]
    if kind == "alert_resolved":
        return items["alerts"].pop(subject, None) is not None
    if kind == "incident_resolved":
        return items["incidents"].pop(subject, None) is not None
    if kind == "request_withdrawn":
        return items["requests"].pop(subject, None) is not None
    if kind == "slot_booked":
        return items["requests"].pop(entry["related"], None) is not None
    return False


def forget_passed(items: OpenItems, now_ms: int) -> None:
    """Drop the facts whose window has passed."""
    items["recent"] = [r for r in items["recent"] if now_ms < r["at"] + WINDOWS[r["fact"]]]


def note(items: OpenItems, entry: Entry, added: bool, kept: list[Entry], now_ms: int) -> bool:
    """Update the open items with an entry; `added`: the timeline took it, `kept`: the
    entries its axis keeps now. True when the items changed though the entry was not added
    (a closing event too old for the timeline still closes)."""
    closed = _close(items, entry)
    if added:
        _open(items, entry, kept)
    forget_passed(items, now_ms)
    return closed and not added


def record(kept: Timeline, entry: Entry, now_ms: int) -> tuple[bool, bool]:
    """Put an entry on a timeline and in its open items: (the entries took it, the stored
    value changed)."""
    items = of(kept, now_ms)
    added = add(kept, entry)
    closed_only = note(items, entry, added, kept["axes"].get(entry["axis"], []), now_ms)
    return added, added or closed_only


def rebuilt(kept: Timeline, now_ms: int) -> OpenItems:
    """The open items of a timeline stored before they were kept: found again from its
    entries, as the rules then read them (an alert whose raise was already dropped stays
    lost)."""
    items = empty()
    for entry in entries(kept):
        _close(items, entry)
        _open(items, entry, kept["axes"].get(entry["axis"], []))
    forget_passed(items, now_ms)
    return items


def of(kept: Timeline, now_ms: int) -> OpenItems:
    """The timeline's open items, rebuilt and stored in it when it has none yet."""
    if "open" not in kept:
        kept["open"] = rebuilt(kept, now_ms)
    items: OpenItems = kept["open"]
    return items
