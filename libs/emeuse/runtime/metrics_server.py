"""The /metrics server: Prometheus's text from a daemon thread, so it answers even while
tables recover; over HTTPS with the service's certificate unless EMEUSE_METRICS_TLS is off
(docs/security.md#encryption).

Not prometheus_client's `start_http_server(certfile=...)`: it wraps the listening socket,
so every TLS handshake runs in the one thread that accepts (a client that connects and says
nothing holds every scrape behind it), and its context is built once (a renewed
certificate would need a restart). Here each connection is shaken hands with in its own
thread, within HANDSHAKE_SECONDS, with the context of the latest sound certificates
(runtime/certificates.py), as the gRPC server does.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from emeuse.runtime.certificates import CertificateFiles
from emeuse.runtime.security import NO_TLS, GrpcTls

log = structlog.get_logger("emeuse.metrics")
# A connection's handshake and request must be over within this: Prometheus's own scrape
# timeout is 10 s by default.
HANDSHAKE_SECONDS = 10.0


def server_context(tls: GrpcTls) -> ssl.SSLContext:
    """The TLS context of a /metrics server: its certificate; under mTLS, the CA a scraper's
    certificate must be signed by."""
    assert tls.ca_file and tls.cert_file and tls.key_file
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.mutual:
        context.load_verify_locations(tls.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class ServerContexts:
    """The context for the next connection: built again when the certificate files were
    renewed with a sound pair; a pair that fails to load keeps the one in use."""

    def __init__(self, tls: GrpcTls) -> None:
        self.tls = tls
        self._files = CertificateFiles(tls)  # a broken pair fails the start
        self._context = server_context(tls)

    def __call__(self) -> ssl.SSLContext:
        if self._files.renewed() is not None:
            try:
                self._context = server_context(self.tls)
            except (OSError, ssl.SSLError) as exc:
                # Changed again between the check and this read: the next change retries.
                log.error("metrics.certificates_unreadable", error=str(exc))
        return self._context


class _QuietHandler(WSGIRequestHandler):
    """Logs no request: a scrape every few seconds is no event."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _MetricsServer(ThreadingWSGIServer):
    contexts: Callable[[], ssl.SSLContext] | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_SECONDS)
        if self.contexts is None:
            super().finish_request(request, client_address)
            return
        try:
            secure = self.contexts().wrap_socket(request, server_side=True)
        except OSError:
            # Plain HTTP, no or an untrusted client certificate, or silence: refused in the
            # handshake, as gRPC refuses them.
            return
        with secure:
            super().finish_request(secure, client_address)


def serve_metrics(port: int, host: str = "127.0.0.1", tls: GrpcTls = NO_TLS) -> WSGIServer:
    """Serve /metrics on host:port from a daemon thread; HTTPS when `tls` is on. Raises
    OSError when the port cannot be bound, CertificateError on broken certificate files.
    Returns the server (a service never stops it; tests do)."""
    contexts = ServerContexts(tls) if tls.on else None
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class: type[_MetricsServer] = type(
        "MetricsServer", (_MetricsServer,), {"address_family": family}
    )
    server = make_server(host, port, make_wsgi_app(), server_class, handler_class=_QuietHandler)
    server.contexts = contexts
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
