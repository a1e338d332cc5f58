"""GetIndicators merges the partitions of every instance before it suppresses anything."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from emeuse.evaluation.v1 import evaluation_service_pb2 as api
from services.evaluation.domain.histogram import PRECISION
from services.evaluation.grpc_api import EvaluationServicer
from tests.unit.evaluation.partitions import CellsHeld, Partitions
from tests.unit.evaluation.scenario import (
    BASELINE,
    EXPECTED,
    TELE,
    month_of_events,
    shown_as,
)


class Aborted(Exception):
    pass


class Context:
    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class PeerChannel:
    """A channel whose calls are answered by another instance's servicer, in process."""

    def __init__(self, peer: EvaluationServicer) -> None:
        self.peer = peer

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call(request: Any, timeout: float | None = None, metadata: Any = None) -> Any:
            return await getattr(self.peer, method.rsplit("/", 1)[1])(request, Context())

        return call


class Router:
    """Two instances: ask_peers asks the other one."""

    def __init__(self) -> None:
        self.peers: list[EvaluationServicer] = []

    async def ask_peers(self, table: Any, context: Any, call: Any, **_: Any) -> list[Any]:
        return [await call(PeerChannel(peer), 1.0, ()) for peer in self.peers]


# Instances call each other as the service (their token's caller id).
AS_AN_INSTANCE = ("evaluation", lambda: "evaluation")


def two_instances(state: Partitions) -> EvaluationServicer:
    first_router, second_router = Router(), Router()
    first = EvaluationServicer(first_router, CellsHeld(state, [0, 1, 2]), *AS_AN_INSTANCE)  # type: ignore[arg-type]
    second = EvaluationServicer(second_router, CellsHeld(state, [3, 4, 5]), *AS_AN_INSTANCE)  # type: ignore[arg-type]
    first_router.peers.append(second)
    return first


def ask(servicer: EvaluationServicer, **fields: str) -> api.GetIndicatorsResponse:
    request = api.GetIndicatorsRequest(**fields)
    return asyncio.run(servicer.GetIndicators(request, Context()))  # type: ignore[arg-type]


def test_indicators_from_two_instances_are_the_whole_territorys():
    state = Partitions()
    for sent in month_of_events():
        state.handle(sent)
    answer = ask(
        two_instances(state),
        experiment_id=TELE,
        territory="55",
        from_month="2026-01",
        to_month="2026-12",
    )
    shown = {(i.month, i.name, i.breakdown): i for i in answer.indicators}
    assert {month for month, _, _ in shown} == {"2026-02", "2026-03"}
    where = (TELE, "55", "2026-03")
    for (name, breakdown), value in EXPECTED[where].items():
        indicator = shown[("2026-03", name, breakdown)]
        if not shown_as(where, name, breakdown, value):
            assert (indicator.value, indicator.suppressed) == (0, True), (name, breakdown)
        elif not name.endswith((".median", ".p90")):
            assert (indicator.value, indicator.suppressed) == (value, False), (name, breakdown)
    assert shown[("2026-02", "chronic.readings", "")].suppressed


def test_the_third_territory_is_published_with_its_own_small_cells_withheld():
    state = Partitions()
    for sent in month_of_events():
        state.handle(sent)
    answer = ask(
        two_instances(state),
        experiment_id=BASELINE,
        territory="52",
        from_month="2026-03",
        to_month="2026-03",
    )
    shown = {(i.name, i.breakdown): i for i in answer.indicators}
    where = (BASELINE, "52", "2026-03")
    assert set(shown) == set(EXPECTED[where])
    for (name, breakdown), value in EXPECTED[where].items():
        indicator = shown[(name, breakdown)]
        if not shown_as(where, name, breakdown, value):
            assert (indicator.value, indicator.suppressed) == (0, True), (name, breakdown)
        elif name.endswith((".median", ".p90")):
            assert indicator.value == pytest.approx(value, rel=PRECISION), name
        else:
            assert (indicator.value, indicator.suppressed) == (value, False), (name, breakdown)
    # 12 requests, 10 from GPs: shown, the 10 would give the 2 nurses away.
    assert shown[("access.requests", "")].value == 12
    assert shown[("access.requests", "profession=gp")].suppressed


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"territory": "55", "from_month": "2026-01", "to_month": "2026-02"}, "experiment_id"),
        (
            {
                "experiment_id": TELE,
                "territory": "75",
                "from_month": "2026-01",
                "to_month": "2026-02",
            },
            "territory",
        ),
        (
            {
                "experiment_id": TELE,
                "territory": "55",
                "from_month": "2026-1",
                "to_month": "2026-02",
            },
            "from_month",
        ),
        (
            {
                "experiment_id": TELE,
                "territory": "55",
                "from_month": "2026-03",
                "to_month": "2026-02",
            },
            "after",
        ),
    ],
)
def test_a_request_that_names_no_experiment_territory_or_months_is_refused(fields, complaint):
    with pytest.raises(Aborted) as refused:
        ask(two_instances(Partitions()), **fields)
    code, details = refused.value.args
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in details
