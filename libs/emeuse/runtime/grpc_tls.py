"""gRPC servers and channels of the platform, plaintext or TLS as the party's settings say.

Every server binds through `bind` and every client (router forwarding, service-to-service
clients, the `emeuse` command, `emeuse simulate`) opens its channel here, so none can be
left plaintext when TLS is on. Certificates renewed on disk are taken without a restart
(docs/security.md, rotating): a server follows its files (certificates.py) and serves the
renewed certificate from the next connection on; `PeerChannels`, the services' channels
to each other, open new channels with it; the tools read the files at every command.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import structlog

from emeuse.runtime.certificates import (
    CLIENT_RECHECK_S,
    CertificateFiles,
    Certificates,
    certificate_expiry,
)
from emeuse.runtime.security import NO_TLS, GrpcTls

__all__ = ["PeerChannels", "bind", "certificate_expiry", "open_aio_channel", "open_channel"]

log = structlog.get_logger("emeuse.tls")
Options = Sequence[tuple[str, Any]]


def _server_configuration(
    certificates: Certificates, mutual: bool
) -> grpc.ServerCertificateConfiguration:
    assert certificates.key and certificates.chain
    return grpc.ssl_server_certificate_configuration(
        [(certificates.key, certificates.chain)],
        root_certificates=certificates.ca if mutual else None,
    )


def server_credentials(files: CertificateFiles) -> grpc.ServerCredentials:
    """The party's certificate; under mTLS, a client certificate the CA signed is required
    (the TLS handshake fails without one, before any call is read). gRPC asks before each
    new connection whether the certificates changed: the files' latest sound set is served
    (taken here, or by whoever else looked at the files)."""
    mutual = files.tls.mutual
    served = files.current

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        # Called on gRPC's own threads; an exception there would fail the handshake.
        nonlocal served
        try:
            files.renewed()
            if files.current is served:
                return None
            served = files.current
            return _server_configuration(served, mutual)
        except Exception as exc:
            log.error("tls.renewal_failed", error=type(exc).__name__)
            return None

    # grpcio's documentation allows None ("no change"); its type stubs do not say so.
    return grpc.dynamic_ssl_server_credentials(
        _server_configuration(served, mutual),
        fetch,  # type: ignore[arg-type]
        require_client_authentication=mutual,
    )


def bind(
    server: grpc.aio.Server, address: str, tls: GrpcTls, files: CertificateFiles | None = None
) -> int:
    """Add the listening port (0 when it cannot be bound)."""
    if not tls.on:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, server_credentials(files or CertificateFiles(tls)))


def _channel_credentials(certificates: Certificates) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=certificates.ca,
        private_key=certificates.key,
        certificate_chain=certificates.chain,
    )


def channel_credentials(tls: GrpcTls) -> grpc.ChannelCredentials:
    """Trust the CA only; present the party's own certificate under mTLS."""
    assert tls.ca_file
    if not tls.mutual:
        return grpc.ssl_channel_credentials(root_certificates=tls.ca_file.read_bytes())
    assert tls.cert_file and tls.key_file
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca_file.read_bytes(),
        private_key=tls.key_file.read_bytes(),
        certificate_chain=tls.cert_file.read_bytes(),
    )


def open_channel(target: str, tls: GrpcTls = NO_TLS, options: Options = ()) -> grpc.Channel:
    if not tls.on:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, channel_credentials(tls), options=options)


def open_aio_channel(target: str, tls: GrpcTls = NO_TLS, options: Options = ()) -> grpc.aio.Channel:
    if not tls.on:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, channel_credentials(tls), options=options)


class PeerChannels:
    """A service's aio channels to other services or to its own instances, one per target,
    on the running loop.

    Under TLS the party's files are looked at (a stat) at most every `recheck_s` when a
    channel is asked for. Once they hold a renewed certificate, channels are opened anew
    with it, and the ones opened before close when their calls are answered (after
    `grace_s` at most): until then they go on with the old certificate, valid until its
    own expiry."""

    def __init__(
        self,
        tls: GrpcTls,
        grace_s: float,
        recheck_s: float = CLIENT_RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tls = tls
        self.grace_s = grace_s
        self.recheck_s = recheck_s
        self._clock = clock
        self._files: CertificateFiles | None = None
        self._credentials: grpc.ChannelCredentials | None = None
        self._open: dict[str, grpc.aio.Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, target: str) -> grpc.aio.Channel:
        if not self.tls.on:
            channel = self._open.get(target)
            if channel is None:
                channel = self._open[target] = grpc.aio.insecure_channel(target)
            return channel
        credentials = self._current_credentials()
        channel = self._open.get(target)
        if channel is None:
            channel = self._open[target] = grpc.aio.secure_channel(target, credentials)
        return channel

    def _current_credentials(self) -> grpc.ChannelCredentials:
        if self._files is None or self._credentials is None:
            # Read on first use: the server read the same files at start and checked them.
            self._files = CertificateFiles(
                self.tls, own=self.tls.mutual, recheck_s=self.recheck_s, clock=self._clock
            )
            self._credentials = _channel_credentials(self._files.current)
        elif (renewed := self._files.renewed()) is not None:
            self._credentials = _channel_credentials(renewed)
            self._retire()
        return self._credentials

    def _retire(self) -> None:
        loop = asyncio.get_running_loop()
        for channel in self._open.values():
            task = loop.create_task(channel.close(self.grace_s))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._open.clear()

    async def close(self) -> None:
        for channel in self._open.values():
            await channel.close()
        self._open.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
