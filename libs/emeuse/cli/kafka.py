"""kafka-python clients for the CLI, with broker failures turned into CliError."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from aiokafka.errors import KafkaError as AIOKafkaError
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from emeuse.cli.environment import tool_kafka_login
from emeuse.cli.errors import CliError
from emeuse.partner_credentials import ClientConfig
from emeuse.registry import TOPICS, TopicSpec
from emeuse.runtime.kafka_clients import KafkaLoginRefused, check_login, client_options
from emeuse.runtime.security import KAFKA_PASSWORD_FILE, TOOLS, KafkaLogin
from emeuse.runtime.startup import Backoff
from emeuse.runtime.topics import TopicError, TopicPlan, TopicsNotReady, ensure_topics

CLIENT_ID = "emeuse-cli"
# A broker just started answers before its controller has registered it ("only 0 broker(s)
# are registered"), or not at all: `topics create` tries again this long before failing.
TOPICS_WAIT = Backoff(total_s=60.0)


def _platform(bootstrap: str, timeout_s: float) -> dict[str, Any]:
    """A client of the platform's listener, logged in as the tools (party `cli`)."""
    return _common(bootstrap, timeout_s) | client_options(_logged_in(bootstrap))


@cache
def _logged_in(bootstrap: str) -> KafkaLogin:
    """The tools' login, tried once: kafka-python reports a refused login only as a broker
    it cannot bootstrap from, so the reason is found here first."""
    login = tool_kafka_login()
    if not login.secured:
        return login
    try:
        asyncio.run(check_login(bootstrap.split(","), login))
    except KafkaLoginRefused as exc:
        variable = KAFKA_PASSWORD_FILE.variable(TOOLS)
        raise CliError(f"{exc}; check {variable}") from None
    return login


def _common(bootstrap: str, timeout_s: float) -> dict[str, Any]:
    ms = int(timeout_s * 1000)
    return {
        "bootstrap_servers": bootstrap.split(","),
        "client_id": CLIENT_ID,
        "request_timeout_ms": max(ms, 1000),
        # An unreachable broker should fail the command in seconds, not the 30 s default.
        "bootstrap_timeout_ms": max(ms, 1000),
    }


@contextmanager
def kafka_errors(bootstrap: str) -> Iterator[None]:
    # aiokafka's errors too: `tail` reads a record kafka-python cannot decode with aiokafka.
    try:
        yield
    except (KafkaError, AIOKafkaError) as exc:
        raise CliError(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"Kafka at {bootstrap}: {exc}") from None


def admin(bootstrap: str, timeout_s: float = 5.0) -> KafkaAdminClient:
    with kafka_errors(bootstrap):
        return KafkaAdminClient(**_platform(bootstrap, timeout_s))


def producer(bootstrap: str, timeout_s: float = 5.0) -> KafkaProducer:
    with kafka_errors(bootstrap):
        # kafka-python 3 defaults to acks=all with idempotence: nothing lost, nothing doubled.
        return KafkaProducer(**_platform(bootstrap, timeout_s), max_block_ms=int(timeout_s * 1000))


def consumer(bootstrap: str, timeout_s: float = 5.0) -> KafkaConsumer:
    """A reader of committed events only, like every consumer of the platform: what an
    aborted transaction wrote is never shown."""
    with kafka_errors(bootstrap):
        return KafkaConsumer(
            **_platform(bootstrap, timeout_s),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )


def partner_consumer(config: ClientConfig, timeout_s: float = 5.0) -> KafkaConsumer:
    """A reader logged in with a partner's settings file, committed events only; it joins no
    group (the partner's ACLs allow only its own groups, and tail commits nothing)."""
    with kafka_errors(config.bootstrap):
        return KafkaConsumer(
            **(_common(config.bootstrap, timeout_s) | config.kafka_python_options()),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )


def partner_admin(config: ClientConfig, timeout_s: float = 5.0) -> KafkaAdminClient:
    """An admin client logged in with a partner's settings file: it sees its own groups."""
    with kafka_errors(config.bootstrap):
        return KafkaAdminClient(
            **(_common(config.bootstrap, timeout_s) | config.kafka_python_options())
        )


def create_topics(
    bootstrap: str,
    replication_factor: int,
    specs: tuple[TopicSpec, ...] = TOPICS,
    *,
    backoff: Backoff = TOPICS_WAIT,
    ensure: Callable[..., list[tuple[str, str]]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[tuple[str, str]]:
    """Create every registry topic that is missing; returns (topic, "created"|"exists").

    A broker that does not answer yet, or refuses for now (controller not ready), is asked
    again after a wait said on stderr, doubling, for `backoff.total_s` in all; then CliError
    names the last error. An existing topic with another partition count is an error at
    once: the services' state co-partitioned with it would fail (PartitionsMismatch).
    """
    plans = [TopicPlan(spec.name, spec.partitions, spec.kafka_config()) for spec in specs]
    if ensure is None:
        login = _logged_in(bootstrap)
        ensure = lambda *args: ensure_topics(*args, login=login)  # noqa: E731
    waits = backoff.waits()
    waited, attempts = 0.0, 0
    while True:
        attempts += 1
        try:
            return ensure(bootstrap, plans, replication_factor)
        except TopicsNotReady as exc:
            wait = next(waits, None)
            if wait is None:
                raise CliError(
                    f"{exc}; gave up after {attempts} attempts in {waited:g} s"
                ) from None
            say(f"emeuse: not ready: {exc}; trying again in {wait:g} s (attempt {attempts})")
            sleep(wait)
            waited += wait
        except TopicError as exc:
            raise CliError(str(exc)) from None
