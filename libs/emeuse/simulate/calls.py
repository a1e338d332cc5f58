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
STAY = (0.8, 1.1)  # how long an aide stays, as a share of the visit's planned length
STAY_IN_SHORT_RUN = (0.3, 0.9)  # ... as a share of what is left of a run too short for that


def visit_id(options: Options, start: datetime, number: int) -> str:
    # The start is in the id: each run plans new visits (t: see stream.py's id_prefix).
    return f"visit-{options.seed}-{start:%Y%m%dt%H%M%S}-{number}"


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
        stay, squeezed = rng.uniform(*STAY), rng.uniform(*STAY_IN_SHORT_RUN)
        if due < options.duration:
            visit = {k: message[k] for k in ("resident_pseudonym", "visit_id", "aide_id")}
            calls.append(
                SimEvent(
                    "home.visit_checked_in",
                    GRPC,
                    "home/CheckIn",
                    plan.territory,
                    plan.subject,
                    arrived,
                    plan.event_id + "-in",
                    {**visit, "checked_in_at": rfc3339(arrived)},
                    due=due,
                )
            )
            calls.append(_check_out(plan, visit, due, stay, squeezed, options, start))
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


def _check_out(
    plan: SimEvent,
    visit: dict[str, str],
    checked_in: float,
    stay: float,
    squeezed: float,
    options: Options,
    start: datetime,
) -> SimEvent:
    """The aide leaving after `stay` of the planned length; when that would be after the
    run's end, after `squeezed` of what is left of the run instead (a visit cannot be
    accelerated: the home service measures it on the wall clock), so every visit checked
    in during a run is checked out in it."""
    due = checked_in + stay * VISIT_LENGTH_S
    if due >= options.duration:
        due = checked_in + squeezed * (options.duration - checked_in)
    left = start + timedelta(seconds=due)
    return SimEvent(
        "home.visit_checked_out",
        GRPC,
        "home/CheckOut",
        plan.territory,
        plan.subject,
        left,
        plan.event_id + "-out",
        {**visit, "checked_out_at": rfc3339(left)},
        due=due,
    )


def merged(records: Iterator[SimEvent], calls: list[SimEvent]) -> Iterator[SimEvent]:
    """Records and calls in the order they are due."""
    return heapq.merge(records, calls, key=lambda event: event.due)
