"""Pseudonyms: the only way a person is named on the bus.

A pseudonym is derived from the INS with a keyed hash (HMAC-SHA256) whose key the
platform holds; re-identification happens only at the edge, for those entitled to it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

PSEUDONYM = re.compile(r"^psn-[a-z2-7]{32}$")


def derive_pseudonym(ins: str, key: bytes) -> str:
    """The pseudonym of the person whose INS is `ins`, under the platform's key."""
    if len(key) < 32:
        raise ValueError("the pseudonymisation key must be at least 32 bytes")
    digest = hmac.new(key, ins.strip().encode(), hashlib.sha256).digest()
    return "psn-" + base64.b32encode(digest[:20]).decode().lower()


def random_pseudonym() -> str:
    """A pseudonym that names nobody, for demos and tests."""
    return "psn-" + base64.b32encode(secrets.token_bytes(20)).decode().lower()


def is_pseudonym(value: str) -> bool:
    return bool(PSEUDONYM.match(value))
