"""Who may call a service's gRPC API: bearer tokens, known by their SHA-256 only.

The callers file holds one `<caller-id> <sha256-hex of token> [<role> [key=value...]]` per
line; each caller (a service, an operator, a partner tool, a professional) keeps its own
token in a file of its own. `emeuse callers add NAME --role R` creates both. The role and
its scope (`member=` for a care-team member, `territory=` for a coordinator) say what the
caller may call (roles.py). A line without a role is one written before roles existed: a
service's name or `operator` keeps that role, any other caller has none and is refused
everything until it is given one. The gRPC server (grpc_server.py) refuses calls without a
known token; health and reflection stay open, for probes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emeuse.registry import SERVICES

CALLER_ID = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
AUTHORIZATION = "authorization"
# A service forwarding a call to the instance that owns the key names the caller it acts for.
ON_BEHALF_OF = "x-emeuse-on-behalf-of"
ROLES = ("operator", "service", "care-team", "coordinator", "evaluator", "partner")
SCOPES = {"care-team": ("member",), "coordinator": ("territory",)}
SCOPE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


class AuthSetupError(RuntimeError):
    """A callers or token file that is missing or malformed; the message says which."""


@dataclass(frozen=True)
class Caller:
    """Who a known token belongs to: its id, its role ("" when it has none) and the scope
    of that role (the care-team member id it acts as, the territory it coordinates)."""

    caller_id: str
    role: str = ""
    member: str = ""
    territory: str = ""

    def line_fields(self) -> list[str]:
        scope = [
            f"{key}={getattr(self, key)}" for key in ("member", "territory") if getattr(self, key)
        ]
        return [self.role, *scope] if self.role else []


def default_role(caller_id: str) -> str:
    """The role of a caller named without one: services and the operator keep theirs."""
    if caller_id in SERVICES:
        return "service"
    return "operator" if caller_id == "operator" else ""


def check_role(role: str, member: str = "", territory: str = "") -> None:
    if role not in ROLES:
        raise AuthSetupError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    given = {key for key, value in (("member", member), ("territory", territory)) if value}
    allowed = set(SCOPES.get(role, ()))
    if given - allowed:
        raise AuthSetupError(f"role {role} takes no {', '.join(sorted(given - allowed))}=")
    if role == "care-team" and not member:
        raise AuthSetupError("role care-team needs member=<the member_id care plans name>")
    for value in (member, territory):
        if value and not SCOPE_VALUE.fullmatch(value):
            raise AuthSetupError(f"scope value {value!r}: letters, digits, '.', ':', '_', '-'")


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


def read_caller_book(path: Path) -> dict[str, Caller]:
    """token hash -> the caller it belongs to, with its role and scope."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise AuthSetupError(f"cannot read gRPC callers file {path}: {exc.strerror}") from None
    callers = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            token_hash, caller = _caller_line(line.split())
        except AuthSetupError as exc:
            raise AuthSetupError(f"{path}:{number}: {exc}") from None
        callers[token_hash] = caller
    if not callers:
        raise AuthSetupError(f"gRPC callers file {path} names no caller")
    return callers


def _caller_line(parts: list[str]) -> tuple[str, Caller]:
    if (
        len(parts) < 2
        or not CALLER_ID.fullmatch(parts[0])
        or not re.fullmatch(r"[0-9a-f]{64}", parts[1])
    ):
        raise AuthSetupError("expected '<caller-id> <sha256 hex> [<role> [key=value...]]'")
    name, token_hash, rest = parts[0], parts[1], parts[2:]
    if not rest:
        return token_hash, Caller(name, default_role(name))
    scope = dict(part.partition("=")[::2] for part in rest[1:])
    unknown = set(scope) - {"member", "territory"}
    if unknown or any("=" not in part for part in rest[1:]):
        raise AuthSetupError(f"scope {' '.join(rest[1:])!r}: expected member=ID or territory=CODE")
    check_role(rest[0], scope.get("member", ""), scope.get("territory", ""))
    return token_hash, Caller(name, rest[0], scope.get("member", ""), scope.get("territory", ""))


def read_callers(path: Path) -> dict[str, str]:
    """token hash -> caller id."""
    return {token_hash: c.caller_id for token_hash, c in read_caller_book(path).items()}


def add_caller(
    name: str,
    callers_file: Path,
    token_file: Path,
    role: str = "",
    *,
    member: str = "",
    territory: str = "",
) -> None:
    """Give `name` a new token (written to token_file, mode 600) and list it in callers_file
    with its role (by default a service's or the operator's; any other caller needs one)."""
    if not CALLER_ID.fullmatch(name):
        raise AuthSetupError(f"caller id {name!r}: lowercase letters, digits, '.', '_' and '-'")
    role = role or default_role(name)
    if not role:
        raise AuthSetupError(f"caller {name!r} needs a role: --role {'|'.join(ROLES)}")
    check_role(role, member, territory)
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
    entry = " ".join(
        [name, hash_token(token), *Caller(name, role, member, territory).line_fields()]
    )
    _write_atomically(callers_file, "\n".join([*kept, entry]) + "\n")


def remove_caller(name: str, callers_file: Path) -> bool:
    """Take `name` out of callers_file (its token stops working); False when it was not there."""
    try:
        lines = callers_file.read_text().splitlines()
    except OSError as exc:
        raise AuthSetupError(
            f"cannot read gRPC callers file {callers_file}: {exc.strerror}"
        ) from None
    kept = [line for line in lines if line.split()[:1] != [name]]
    if len(kept) == len(lines):
        return False
    _write_atomically(callers_file, "\n".join(kept) + "\n")
    return True


def _write_atomically(path: Path, text: str) -> None:
    # Services re-read the file when it changes: they must never see half of it.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


def caller_of(callers: Mapping[str, Caller], metadata: Any) -> tuple[Caller | None, str]:
    """The caller id a call's metadata presents a known token for; else None and why the
    call is refused (`no token`, `malformed authorization`, `unknown token`), for the log."""
    header = str(dict(metadata or ()).get(AUTHORIZATION, ""))
    if not header:
        return None, "no token"
    if not header.startswith("Bearer ") or not header[len("Bearer ") :]:
        return None, "malformed authorization"
    caller = callers.get(hash_token(header[len("Bearer ") :]))
    return (caller, "") if caller else (None, "unknown token")
