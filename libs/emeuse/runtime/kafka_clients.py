"""The security keyword arguments of every Kafka client the platform constructs.

aiokafka (the kernel's consumers and producers, the audit writer, followers) and
kafka-python (admin clients, the `emeuse` command, `emeuse simulate`) take the same names
for them, so one builder serves both: `AIOKafkaProducer(bootstrap_servers=...,
**client_options(settings.kafka_login))`.

Helpers that are given a bootstrap address only (topic creation, the raw record reader)
use the process's login, set once by its composition root with `use`.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed

from emeuse.runtime import kafka_trust
from emeuse.runtime.security import PLAINTEXT, SCRAM, KafkaLogin

_process_login: KafkaLogin = PLAINTEXT


def use(login: KafkaLogin) -> None:
    """The login of every client this process makes without naming one."""
    global _process_login
    _process_login = login


def process_login() -> KafkaLogin:
    return _process_login


def client_options(login: KafkaLogin | None = None) -> dict[str, Any]:
    """security_protocol, and for SASL_SSL the CA-checked TLS context and the SCRAM login."""
    login = _process_login if login is None else login
    if not login.secured:
        return {"security_protocol": "PLAINTEXT"}
    assert login.ca_file is not None
    # Checks the broker's certificate and its name against the bootstrap host; one context
    # per CA file and process, which takes a renewed CA without a restart (kafka_trust).
    return {
        "security_protocol": "SASL_SSL",
        "ssl_context": kafka_trust.context_for(login.ca_file),
        "sasl_mechanism": SCRAM,
        "sasl_plain_username": login.username,
        "sasl_plain_password": login.password,
    }


class KafkaLoginRefused(RuntimeError):
    """The broker refused the login or its certificate failed the check: no wait mends it."""


async def check_login(bootstrap: Sequence[str], login: KafkaLogin, timeout_s: float = 10.0) -> None:
    """Log in once to the first broker that answers; KafkaLoginRefused on a wrong password,
    an unknown user or a certificate the CA did not sign. A broker that does not answer
    yet is not an error here (the topic wait at start handles it)."""
    if not login.secured:
        return
    for server in bootstrap:
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(timeout_s):
                connection = await create_conn(host.strip("[]"), int(port), **client_options(login))
        except SaslAuthenticationFailed as exc:
            raise KafkaLoginRefused(
                f"Kafka at {server} refused the login of {login.username} ({SCRAM}): "
                f"{exc.args[0] if exc.args else 'authentication failed'}"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise KafkaLoginRefused(
                f"Kafka at {server}: its certificate is not trusted ({exc.verify_message})"
            ) from None
        except (OSError, TimeoutError, KafkaError):
            continue
        connection.close()
        return


def log_in_or_exit(bootstrap: Sequence[str], login: KafkaLogin, variable: str) -> None:
    """At a service's start: the login every client of the process uses, checked once; a
    refused login stops the process (status 2) with one line naming `variable`."""
    use(login)
    if not login.secured:
        return
    try:
        asyncio.run(check_login(bootstrap, login))
    except KafkaLoginRefused as exc:
        print(f"emeuse: {exc}; check {variable}", file=sys.stderr)
        raise SystemExit(2) from None
