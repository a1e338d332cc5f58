"""Waiting at start for what a service needs from the broker, with a bounded, logged back-off.

Services started together with a broker (`make up`, a cluster restart) ask for their
topics before the broker has elected their leaders, or before `emeuse topics create` has
run. They wait instead of exiting: each wait is logged with what is missing, the waits
double from FIRST_WAIT_S up to MAX_WAIT_S, and the service gives up (exit status 1, for its
supervisor) only once EMEUSE_TOPICS_WAIT_SECONDS have been spent waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import structlog

from emeuse.runtime.topics import TopicError, TopicsNotReady

log = structlog.get_logger("emeuse.startup")
FIRST_WAIT_S = 0.5
MAX_WAIT_S = 15.0


@dataclass(frozen=True)
class Backoff:
    """Waits between attempts: `first_s`, doubling, at most `cap_s` each, `total_s` in all."""

    total_s: float
    first_s: float = FIRST_WAIT_S
    cap_s: float = MAX_WAIT_S

    def waits(self) -> Iterator[float]:
        spent, wait = 0.0, self.first_s
        while spent < self.total_s:
            step = min(wait, self.cap_s, self.total_s - spent)
            yield step
            spent += step
            wait *= 2


async def wait_for_topics(
    attempt: Callable[[], Awaitable[object]],
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run `attempt` until it succeeds. TopicsNotReady (missing, leaderless, broker not
    answering) is waited out; any other TopicError (a wrong partition count) is not: no
    wait mends it. After the last wait, TopicError says what was still missing."""
    waited, attempts = 0.0, 0
    waits = backoff.waits()
    while True:
        attempts += 1
        try:
            await attempt()
        except TopicsNotReady as exc:
            wait = next(waits, None)
            if wait is None:
                raise TopicError(
                    f"{exc}; gave up after {attempts} attempts in {waited:g} s "
                    "(EMEUSE_TOPICS_WAIT_SECONDS)"
                ) from None
            log.warning(
                "service.topics_waiting",
                missing=str(exc),
                attempt=attempts,
                retry_in_s=round(wait, 3),
                waited_s=round(waited, 3),
            )
            await sleep(wait)
            waited += wait
            continue
        if attempts > 1:
            log.info("service.topics_ready", attempts=attempts, waited_s=round(waited, 3))
        return
