"""Calls made during the live events, at their time: home-aide visits checked in and out
(a share never, so they are missed) and prevention enrollees opting out."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from emeuse.simulate.events import GRPC, Options, SimEvent, duration, rfc3339
from emeuse.simulate.population import Population
from emeuse.simulate.setup import TERRITORY_ENUM

VISIT_LENGTH_S = 1800


def visit_id(options: Options, start: datetime, number: int) -> str:
    # The start is in the id: each run plans new visits.
    return f"visit-{options.seed}-{start:%Y%m%d%H%M%S}-{number}"


def aide_id(territory: str) -> str:
    return f"aide-{territory}-0001"


def visit_plans(population: Population, options: Options, start: datetime) -> list[SimEvent]:
    """One visit per home, starting within the first half of the run (setup, stage 2)."""
    rng = random.Random(f"emeuse-simulate-visits-{options.seed}")
    plans = []
    for number, home in enumerate(population.homes, start=1):
        resident = home.person.pseudonym
        begins = start + timedelta(seconds=rng.uniform(0.1, 0.5) * options.duration)
        message = {
            "resident_pseudonym": resident,
            "visit_id": visit_id(options, start, number),
            "aide_id": aide_id(home.person.territory),
            "planned_start": rfc3339(begins),
            "planned_duration": duration(VISIT_LENGTH_S),
            "missed_after": duration(options.visit_missed_after_s),
        }
        plans.append(
            SimEvent(
                "home.visit_planned",
                GRPC,
                "home/PlanVisit",
                home.person.territory,
                resident,
                start,
                message["visit_id"],
                message,
            )
        )
    return plans


def timed_calls(
    population: Population, options: Options, start: datetime, plans: Iterable[SimEvent]
) -> list[SimEvent]:
    """The run's timed calls, by the time they are due (within --duration)."""
    rng = random.Random(f"emeuse-simulate-calls-{options.seed}")
    calls: list[SimEvent] = []
    for plan in plans:
        if rng.random() < options.missed_visit_rate:
            continue
        message = plan.message
        begins = datetime.fromisoformat(message["planned_start"].replace("Z", "+00:00"))
        # Up to two minutes late, less in a short run, so every check-in falls within it.
        arrived = begins + timedelta(seconds=rng.uniform(0, min(120, 0.2 * options.duration)))
        due = (arrived - start).total_seconds()
        if due < options.duration:
            check_in = {k: message[k] for k in ("resident_pseudonym", "visit_id", "aide_id")}
            calls.append(
                SimEvent(
                    "home.visit_checked_in",
                    GRPC,
                    "home/CheckIn",
                    plan.territory,
                    plan.subject,
                    arrived,
                    plan.event_id + "-in",
                    {**check_in, "checked_in_at": rfc3339(arrived)},
                    due=due,
                )
            )
    for person in population.enrollees:
        if rng.random() < options.opt_out_share:
            due = rng.uniform(0, options.duration)
            message = {
                "person_pseudonym": person.pseudonym,
                "channels": [],
                "reason_code": "person.request",
                "territory": TERRITORY_ENUM[person.territory],
            }
            calls.append(
                SimEvent(
                    "prevention.opted_out",
                    GRPC,
                    "prevention/OptOut",
                    person.territory,
                    person.pseudonym,
                    start + timedelta(seconds=due),
                    f"opt-out-{person.pseudonym[4:16]}",
                    message,
                    due=due,
                )
            )
    return sorted(calls, key=lambda call: call.due)


def merged(records: Iterator[SimEvent], calls: list[SimEvent]) -> Iterator[SimEvent]:
    """Records and calls in the order they are due."""
    return heapq.merge(records, calls, key=lambda event: event.due)
