"""gRPC servers and channels of the platform, plaintext or TLS as the party's settings say.

Every server binds through `bind` and every client (router forwarding, service-to-service
clients, the `emeuse` command, `emeuse simulate`) opens its channel here, so none can be
left plaintext when TLS is on. Files are read when a server binds or a channel opens: a
renewed certificate is taken at the next start (docs/security.md, rotating).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from emeuse.runtime.security import NO_TLS, GrpcTls

Options = Sequence[tuple[str, Any]]


def server_credentials(tls: GrpcTls) -> grpc.ServerCredentials:
    """The party's certificate; under mTLS, a client certificate the CA signed is required
    (the TLS handshake fails without one, before any call is read)."""
    assert tls.cert_file and tls.key_file and tls.ca_file
    pair = (tls.key_file.read_bytes(), tls.cert_file.read_bytes())
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=tls.ca_file.read_bytes() if tls.mutual else None,
        require_client_auth=tls.mutual,
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


def bind(server: grpc.aio.Server, address: str, tls: GrpcTls) -> int:
    """Add the listening port (0 when it cannot be bound)."""
    if not tls.on:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, server_credentials(tls))


def open_channel(target: str, tls: GrpcTls = NO_TLS, options: Options = ()) -> grpc.Channel:
    if not tls.on:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, channel_credentials(tls), options=options)


def open_aio_channel(target: str, tls: GrpcTls = NO_TLS, options: Options = ()) -> grpc.aio.Channel:
    if not tls.on:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, channel_credentials(tls), options=options)


def certificate_expiry(path: Path) -> float:
    """When the PEM certificate at `path` expires, in seconds since the epoch.

    Read with the standard library's certificate decoder (the one `ssl` uses for a peer's
    certificate): the platform does not depend on a cryptography package for one date.
    """
    decoded = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    return float(ssl.cert_time_to_seconds(decoded["notAfter"]))
