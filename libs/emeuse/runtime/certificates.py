"""A party's certificate files, read again when they change, so a certificate renewed with
`scripts/certs.sh renew` is served and presented without a restart (docs/security.md,
rotating).

The key, the certificate and the CA are read together and taken only when the key matches
the certificate and every file parses: a pair caught half-written (a new key beside the old
certificate) or a broken file is logged and the certificates in use are kept, then read
again at the files' next change. Errors name the files, never their content.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from emeuse.runtime.security import GrpcTls

log = structlog.get_logger("emeuse.tls")
# How often the files are looked at (a stat each): servers on a new connection, clients
# before opening a channel or handing out one already open.
SERVER_RECHECK_S = 1.0
CLIENT_RECHECK_S = 5.0
# One file's identity and version: a rename over it changes the inode, a rewrite the rest.
Stamp = tuple[int, int, int] | None


class CertificateError(Exception):
    """The files do not hold a usable key, certificate and CA."""


@dataclass(frozen=True)
class Certificates:
    """PEM bytes read together; no key or certificate for a client presenting none."""

    ca: bytes
    key: bytes | None
    chain: bytes | None
    expires: float | None  # the party's certificate, in seconds since the epoch
    ca_expires: float


def certificate_expiry(path: Path) -> float:
    """When the PEM certificate at `path` expires, in seconds since the epoch.

    Read with the standard library's certificate decoder (the one `ssl` uses for a peer's
    certificate): the platform does not depend on a cryptography package for one date.
    """
    decoded = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    return float(ssl.cert_time_to_seconds(decoded["notAfter"]))


def _paths(tls: GrpcTls, own: bool) -> tuple[Path, ...]:
    assert tls.ca_file
    if not own:
        return (tls.ca_file,)
    assert tls.cert_file and tls.key_file
    return tls.ca_file, tls.key_file, tls.cert_file


def _contents(paths: tuple[Path, ...]) -> tuple[bytes, ...]:
    return tuple(path.read_bytes() for path in paths)


def read_certificates(tls: GrpcTls, own: bool = True) -> Certificates:
    """The CA and, when `own`, the party's key and certificate, checked to match.

    The files are read, checked by path, then read again: equal contents mean the check
    saw what was read (no writer in between)."""
    paths = _paths(tls, own)
    names = ", ".join(str(p) for p in paths)
    try:
        first = _contents(paths)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=first[0].decode("ascii"))
        ca_expires = certificate_expiry(paths[0])
        expires = None
        if own:
            context.load_cert_chain(paths[2], paths[1])
            expires = certificate_expiry(paths[2])
        again = _contents(paths)
    except (OSError, ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
        # ssl's reasons (KEY_VALUES_MISMATCH, NO_START_LINE...) quote no key material.
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise CertificateError(f"{names}: {reason or type(exc).__name__}") from None
    if again != first:
        raise CertificateError(f"{names}: changed while being read")
    key, chain = (first[1], first[2]) if own else (None, None)
    return Certificates(first[0], key, chain, expires, ca_expires)


def file_stamp(path: Path) -> Stamp:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class CertificateFiles:
    """The certificates in use and the files they came from, looked at every `recheck_s`.

    `own`: the party's key and certificate too (a server, a client under mTLS); a client
    under plain TLS reads the CA alone. `taken` hears of each renewed set taken, whoever
    looked. Thread-safe: gRPC asks for a server's certificates on its own threads."""

    def __init__(
        self,
        tls: GrpcTls,
        own: bool = True,
        recheck_s: float = SERVER_RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
        taken: Callable[[Certificates], None] | None = None,
    ) -> None:
        self.tls = tls
        self.own = own
        self._taken = taken
        self.recheck_s = recheck_s
        self._clock = clock
        self._lock = threading.Lock()
        self._paths = _paths(tls, own)
        self._stamps = self._stat()
        self.current = read_certificates(tls, own)  # fails the start on a broken pair
        self._checked = clock()

    def _stat(self) -> tuple[Stamp, ...]:
        return tuple(file_stamp(path) for path in self._paths)

    def renewed(self) -> Certificates | None:
        """The certificates read again when the files changed since they were last looked
        at and hold a sound set; None otherwise (nothing changed, or the change is not
        sound: logged, and the certificates in use stay)."""
        with self._lock:
            now = self._clock()
            if now - self._checked < self.recheck_s:
                return None
            self._checked = now
            stamps = self._stat()
            if stamps == self._stamps:
                return None
            # Taken before reading: a write after it shows as one more change next time.
            self._stamps = stamps
            try:
                read = read_certificates(self.tls, self.own)
            except CertificateError as exc:
                log.error(
                    "tls.certificates_unreadable", error=str(exc), kept_expires=self.current.expires
                )
                return None
            if read == self.current:
                return None
            self.current = read
            log.info("tls.certificates_renewed", files=self._files(), expires=read.expires)
            if self._taken is not None:
                self._taken(read)
            return read

    def _files(self) -> str:
        return ", ".join(os.fspath(path) for path in self._paths)
