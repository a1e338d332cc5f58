"""The service's timer: one home's trouble (a broker error, a state that does not read)
is counted and retried; the other homes' steps are still asked for."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from emeuse.runtime.timers import AskedSteps
from services.home.agents import REASK_AFTER_S, TIMER_ERRORS, ask_due_steps
from services.home.configuration import record_home
from services.home.domain.home import HomeState
from tests.unit.home.homes import ENROLLED_AT, RESIDENT, at, enrolled, fall, feed, home

FELL = at("10:00")
DUE = at("10:11")  # the daughter did not answer within 10 minutes


class Bus:
    """Publishes, except for the residents it fails for (a broker blip)."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.published: list[tuple[str, Any]] = []
        self.options: list[dict[str, Any]] = []

    async def publish(self, spec: Any, message: Any, *, key: str, **options: Any) -> None:
        if key in self.failing:
            raise KafkaTimeoutError()
        self.published.append((key, message))
        self.options.append(options)


def a_home_with_a_step_due(resident: str) -> HomeState:
    event = fall(FELL)
    event.resident_pseudonym = resident
    state, _ = feed(enrolled(), event)
    return state


def errors(error: str) -> float:
    return TIMER_ERRORS.labels(error)._value.get()  # type: ignore[attr-defined]


def test_a_broker_error_for_one_home_does_not_stop_the_timer_for_the_others():
    homes = {name: a_home_with_a_step_due(name) for name in ("psn-a", "psn-b", "psn-c")}
    bus = Bus(failing={"psn-a"})
    asked = AskedSteps(REASK_AFTER_S)
    before = errors("KafkaTimeoutError")
    asyncio.run(ask_due_steps(bus, list(homes), homes.__getitem__, asked, DUE, 100.0))  # type: ignore[arg-type]
    assert [key for key, _ in bus.published] == ["psn-b", "psn-c"]
    assert errors("KafkaTimeoutError") == before + 1
    # The failed step is asked again at the next round, the others are not.
    bus.failing.clear()
    asyncio.run(ask_due_steps(bus, list(homes), homes.__getitem__, asked, DUE, 101.0))  # type: ignore[arg-type]
    assert [key for key, _ in bus.published] == ["psn-b", "psn-c", "psn-a"]


def test_a_home_whose_state_cannot_be_read_is_counted_and_skipped():
    good = a_home_with_a_step_due("psn-b")

    def state_of(resident: str) -> HomeState:
        if resident == "psn-a":
            return HomeState.from_json({"incidents": "not a mapping"})
        return good

    bus = Bus(failing=set())
    before = errors("ValidationError")
    asyncio.run(
        ask_due_steps(bus, ["psn-a", "psn-b"], state_of, AskedSteps(REASK_AFTER_S), DUE, 100.0)
    )  # type: ignore[arg-type]
    assert [key for key, _ in bus.published] == ["psn-b"]
    assert errors("ValidationError") == before + 1


def test_the_timer_asks_in_the_home_s_experiment_not_the_service_default():
    state = record_home(
        home(),
        state=HomeState(),
        territory="55",
        now=ENROLLED_AT,
        experiment="exp-domicile",
    )
    state, _ = feed(state, fall(FELL))
    # Changing the contacts (no experiment said) keeps the home in its experiment.
    state = record_home(home(gir_level=3), state=state, territory="55", now=FELL)
    assert state.config is not None and state.config.experiment == "exp-domicile"
    bus = Bus(failing=set())
    asyncio.run(
        ask_due_steps(
            bus, [RESIDENT], {RESIDENT: state}.__getitem__, AskedSteps(REASK_AFTER_S), DUE, 1.0
        )
    )  # type: ignore[arg-type]
    assert [kwargs["experiment_id"] for kwargs in bus.options] == ["exp-domicile"]
