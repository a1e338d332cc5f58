"""Who may call a service's gRPC API: bearer tokens, known by their SHA-256 only.

The callers file holds one `<caller-id> <sha256-hex of token>` per line; each caller
(a service, an operator, a partner tool) keeps its own token in a file of its own.
`emeuse callers add NAME` creates both. The gRPC server (grpc_server.py) refuses calls
without a known token; health and reflection stay open, for probes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any

CALLER_ID = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
AUTHORIZATION = "authorization"


class AuthSetupError(RuntimeError):
    """A callers or token file that is missing or malformed; the message says which."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that presents `token`."""
    return ((AUTHORIZATION, f"Bearer {token}"),)


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise AuthSetupError(f"cannot read gRPC token file {path}: {exc.strerror}") from None
    if len(token) < 32:
        raise AuthSetupError(f"gRPC token file {path} holds no token of at least 32 characters")
    return token


def read_callers(path: Path) -> dict[str, str]:
    """token hash -> caller id."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise AuthSetupError(f"cannot read gRPC callers file {path}: {exc.strerror}") from None
    callers = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if (
            len(parts) != 2
            or not CALLER_ID.fullmatch(parts[0])
            or not re.fullmatch(r"[0-9a-f]{64}", parts[1])
        ):
            raise AuthSetupError(f"{path}:{number}: expected '<caller-id> <sha256 hex>'")
        callers[parts[1]] = parts[0]
    if not callers:
        raise AuthSetupError(f"gRPC callers file {path} names no caller")
    return callers


def add_caller(name: str, callers_file: Path, token_file: Path) -> None:
    """Give `name` a new token (written to token_file, mode 600) and list it in callers_file."""
    if not CALLER_ID.fullmatch(name):
        raise AuthSetupError(f"caller id {name!r}: lowercase letters, digits, '.', '_' and '-'")
    token = new_token()
    token_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    kept = []
    if callers_file.exists():
        kept = [
            line for line in callers_file.read_text().splitlines() if line.split()[:1] != [name]
        ]
    callers_file.parent.mkdir(parents=True, exist_ok=True)
    callers_file.write_text("\n".join([*kept, f"{name} {hash_token(token)}"]) + "\n")


def caller_of(callers: dict[str, str], metadata: Any) -> tuple[str | None, str]:
    """The caller id a call's metadata presents a known token for; else None and why the
    call is refused (`no token`, `malformed authorization`, `unknown token`), for the log."""
    header = str(dict(metadata or ()).get(AUTHORIZATION, ""))
    if not header:
        return None, "no token"
    if not header.startswith("Bearer ") or not header[len("Bearer ") :]:
        return None, "malformed authorization"
    caller = callers.get(hash_token(header[len("Bearer ") :]))
    return (caller, "") if caller else (None, "unknown token")
