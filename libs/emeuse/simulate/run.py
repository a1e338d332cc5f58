"""A simulation run: the enrolments stage by stage, then the live events at the rate,
with a live view of what was sent per kind and what failed, and a summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emeuse.simulate.calls import merged, timed_calls, visit_plans
from emeuse.simulate.events import Options, SimEvent
from emeuse.simulate.pace import Pace
from emeuse.simulate.partners import consents, partner_users, withdrawals, withdrawn_at
from emeuse.simulate.population import Population, build_population, silence
from emeuse.simulate.send import Tally, Transport
from emeuse.simulate.setup import setup_stages
from emeuse.simulate.stream import earliest, live_events

SETUP_WAIT_S = 120  # the longest the enrolments may take to be answered


class Responders(Protocol):
    """Who answers what the platform raises, books and sends (care_team.CareTeams)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LagView(Protocol):
    """The platform's consumer lag, measured now and then (lag.PlatformLag)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Plan:
    population: Population
    stages: list[list[SimEvent]]
    live: Iterable[SimEvent]
    live_count: int
    partners: list[str]  # partner ids whose devices send readings
    users: dict[str, str]  # patient -> the partner whose device they use
    withdrawn: dict[str, datetime]  # partner user -> when they withdraw their consent


def plan(options: Options, now: datetime | None = None, setup: bool = True) -> Plan:
    """Every event of a run, from the options alone (and the start time). Without the
    setup, no visits are planned, so none is checked in."""
    start = options.start or now or datetime.now(UTC)
    population = silence(
        build_population(options.seed, options.scale, options.territories),
        options.gap_share,
        options.seed,
    )
    stages = setup_stages(population, options, start) if setup else []
    visits = visit_plans(population, options, start) if setup else []
    users = partner_users(population, options)
    if stages:
        stages[0].extend(consents(population, options, users, start, earliest(options, start)))
        stages[-1].extend(visits)
        stages = [[replace(e, stage=n) for e in stage] for n, stage in enumerate(stages, 1)]
    withdrawing = withdrawals(population, options, users, start)
    calls = sorted([*timed_calls(population, options, start, visits), *withdrawing], key=_due)
    return Plan(
        population,
        stages,
        merged(live_events(population, options, start, users, withdrawn_at(withdrawing)), calls),
        round(options.rate * options.duration) + len(calls),
        sorted(set(users.values())),
        users,
        {event.subject: event.at for event in withdrawing},
    )


def _due(event: SimEvent) -> float:
    return event.due


def counts_table(tally: Tally, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("kind")
    table.add_column("sent", justify="right")
    table.add_column("failed", justify="right")
    for kind in sorted(set(tally.sent) | set(tally.failed)):
        table.add_row(kind, str(tally.sent[kind]), str(tally.failed[kind] or ""))
    for reason, count in tally.reasons.most_common(5):
        table.add_row(f"[red]error: {reason}", "", str(count))
    return table


def run(
    options: Options,
    transport: Transport,
    console: Console,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    responders: Callable[[set[str], Tally], Responders] | None = None,
    linger_s: float = 0.0,
    setup: bool = True,
    lag: LagView | None = None,
    feed_readers: Callable[[Plan, Tally], Responders] | None = None,
) -> Tally:
    """Send the plan's events; `responders` answer alerts from before the first call until
    `linger_s` seconds after the last event, and `feed_readers` (the partners' apps) read
    the partners' feeds meanwhile; `lag` is shown live and at the end."""
    run_plan = plan(options, setup=setup)
    counted = ", ".join(f"{code}: {n:,}" for code, n in run_plan.population.people.items())
    pop = run_plan.population
    console.print(
        f"territory of {counted} people (scale {options.scale:g}, seed {options.seed}): "
        f"{len(pop.patients)} monitored patients, {len(pop.homes)} connected homes, "
        f"{len(pop.enrollees)} prevention enrollees, {len(pop.practitioners)} practitioners, "
        f"{len(pop.places)} places; partners: {', '.join(run_plan.partners) or 'none'}"
    )
    tally = Tally()
    people = {p.person.pseudonym for p in pop.patients} | {h.person.pseudonym for h in pop.homes}
    people |= {e.pseudonym for e in pop.enrollees}  # their messages get receipts
    teams = responders(people, tally) if responders else None
    if teams:
        teams.start()
    if lag:
        lag.start()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    readers = None
    if setup and run_plan.partners:
        transport.register_partners(run_plan.partners)
        readers = feed_readers(run_plan, tally) if feed_readers else None
    if readers:
        readers.start()
    with Live(
        console=console,
        refresh_per_second=4,
        transient=True,  # the summary below replaces it
        get_renderable=lambda: Group(
            progress,
            counts_table(tally, "events"),
            f"platform lag: {lag.describe()}" if lag else "",
        ),
    ):
        for number, stage in enumerate(run_plan.stages, start=1):
            task = progress.add_task(f"enrolments, stage {number}", total=len(stage))
            for event in stage:
                tally.started()
                transport.send(event, tally.done)
                progress.update(task, completed=_answered(tally, stage))
            deadline = clock() + SETUP_WAIT_S
            while tally.pending and clock() < deadline:
                progress.update(task, completed=len(stage) - tally.pending)
                sleep(0.1)
            progress.update(task, completed=len(stage) - tally.pending)
        task = progress.add_task(f"live events at {options.rate:g}/s", total=run_plan.live_count)
        began, cpu_began = clock(), time.process_time()
        for n, event in enumerate(run_plan.live):
            ahead = began + event.due - clock()
            if ahead > 0.002:
                transport.idle()
                sleep(ahead)
            tally.started()
            transport.send(event, tally.done)
            if n % 50 == 0:
                progress.update(task, completed=n)
        transport.flush()
        progress.update(task, completed=run_plan.live_count)
        pace = Pace(
            run_plan.live_count,
            run_plan.live_count / options.duration if options.duration else options.rate,
            clock() - began,
            time.process_time() - cpu_began,
            transport.waited_s,
        )
        if teams:
            task = progress.add_task("care teams answering", total=max(linger_s, 0.1))
            lingered = clock()
            while clock() - lingered < linger_s:
                sleep(0.25)
                progress.update(task, completed=clock() - lingered)
            teams.stop()
        if readers:
            readers.stop()
    console.print(counts_table(tally, "summary"))
    sent = sum(tally.sent.values())
    console.print(f"{sent:,} sent, {sum(tally.failed.values()):,} failed; {pace.describe()}")
    if lag:
        console.print(f"platform lag at the end: {lag.describe()}")
        lag.stop()
    return tally


def _answered(tally: Tally, stage: list[SimEvent]) -> int:
    return max(0, len(stage) - tally.pending)
