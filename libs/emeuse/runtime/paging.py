"""Page tokens of the List RPCs: the last item's sort key, as base64 JSON, opaque to callers."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar

NOT_OURS = "page_token is not one this service gave"
MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 500, 50
Cursor = TypeVar("Cursor")


def page_token(cursor: object) -> str:
    """The token of the page that continues after `cursor` (JSON-serialisable)."""
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()


def page_cursor(token: str, read: Callable[[Any], Cursor]) -> Cursor | None:
    """`read(cursor)` of a token `page_token` gave; None for the first page. ValueError
    (NOT_OURS) for anything else, whatever `read` finds wrong in it."""
    if not token:
        return None
    try:
        return read(json.loads(base64.urlsafe_b64decode(token.encode())))
    except (binascii.Error, ValueError, KeyError, IndexError, TypeError):
        raise ValueError(NOT_OURS) from None


def page_size(requested: int) -> int:
    """The size of a page asked for (0: the default); ValueError beyond MAX_PAGE_SIZE."""
    if not 0 <= requested <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 0 to {MAX_PAGE_SIZE}")
    return requested or DEFAULT_PAGE_SIZE
