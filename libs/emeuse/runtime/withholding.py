"""Dead letters that name nobody: the original of a record holding a direct identifier is
withheld (its size and SHA-256 kept), wherever the dead letter is written.

Shared by the kernel's dead letters (kernel/outputs.py) and the partner SDK's (partner/
dispatch.py), so both withhold the same records the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from emeuse.platform.v1.dead_letter_pb2 import MessageDeadLettered
from emeuse.runtime.identifying import identifier_kind

# Printable runs of a record's bytes, where a dead letter looks for a direct identifier
# (protobuf strings lie there in clear).
_TEXT_RUN = re.compile(r"[^\x00-\x1f\x7f\ufffd]{4,}")


def identifier_in(
    key: bytes | None,
    value: bytes | None,
    header_values: Iterable[bytes | None],
) -> str | None:
    """The kind of direct identifier in a record's key, header values or the text runs of
    its value, if any."""
    for part in (key or b"", value or b"", *(v or b"" for v in header_values)):
        for run in _TEXT_RUN.findall(part.decode(errors="replace")):
            kind = identifier_kind(run)
            if kind is not None:
                return kind
    return None


def withhold(letter: MessageDeadLettered, value: bytes) -> None:
    """Keep of the original only its size and SHA-256: no key, value or header."""
    letter.original_withheld = True
    letter.original_value_size = len(value)
    letter.original_value_sha256 = hashlib.sha256(value).digest()
    for name in ("original_key", "original_value", "original_headers", "original_raw_headers"):
        letter.ClearField(name)
