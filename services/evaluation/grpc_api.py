"""EvaluationService servicer: merges every partition's cells, then suppresses small cells.

A territory's month is counted on every partition (processing.py), held by several
instances: GetIndicators reads the cells of the partitions held here and asks each other
instance for its own (GetPartialAggregates), merges them, and only then computes quantiles
and applies the small-cell rule, so suppression is decided on the whole figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import grpc

from emeuse.evaluation.v1 import evaluation_service_pb2 as api
from emeuse.evaluation.v1 import evaluation_service_pb2_grpc as api_grpc
from emeuse.kernel.router import Router
from emeuse.kernel.tables import Table
from emeuse.runtime.envelope import EXPERIMENT_ID, territory_from_code
from emeuse.runtime.grpc_server import Registrar, current_caller
from services.evaluation.contributions import PERSON_COUNTS, RELATIONS
from services.evaluation.domain import cells, periods
from services.evaluation.processing import parse_cell_key

MAX_MONTHS = 60
WEEKLY = api.Period.PERIOD_WEEK
PERIODS = (api.Period.PERIOD_UNSPECIFIED, api.Period.PERIOD_MONTH, WEEKLY)
Request = api.GetIndicatorsRequest | api.GetPartialAggregatesRequest


def check_request(request: Request) -> None:
    if not EXPERIMENT_ID.fullmatch(request.experiment_id):
        raise ValueError("experiment_id is not an experiment id ([a-z0-9][a-z0-9._-]*)")
    territory_from_code(request.territory)
    for name in ("from_month", "to_month"):
        if not periods.MONTH.fullmatch(getattr(request, name)):
            raise ValueError(f"{name} must be a month YYYY-MM")
    if request.from_month > request.to_month:
        raise ValueError("from_month is after to_month")
    first, last = (int(m[:4]) * 12 + int(m[5:]) for m in (request.from_month, request.to_month))
    if last - first >= MAX_MONTHS:
        raise ValueError(f"at most {MAX_MONTHS} months per call")
    if request.period not in PERIODS:
        raise ValueError("period must be PERIOD_MONTH or PERIOD_WEEK")


def asked_for(request: Request, period: str) -> bool:
    """Whether a cell's period is one the request asks for (its kind, within its months)."""
    if request.period == WEEKLY:
        return bool(periods.WEEK.fullmatch(period)) and periods.week_touches(
            period, request.from_month, request.to_month
        )
    return bool(periods.MONTH.fullmatch(period)) and (
        request.from_month <= period <= request.to_month
    )


def to_partial(period: str, cell: cells.Cell) -> api.PartialAggregate:
    weekly = bool(periods.WEEK.fullmatch(period))
    return api.PartialAggregate(
        month="" if weekly else period,
        week=period if weekly else "",
        counts=cell.get("counts", {}),
        durations=[
            api.DurationHistogram(name=name, buckets={int(b): n for b, n in buckets.items()})
            for name, buckets in sorted(cell.get("durations", {}).items())
        ],
    )


def from_partial(partial: api.PartialAggregate) -> cells.Cell:
    return {
        "counts": dict(partial.counts),
        "durations": {h.name: {str(b): n for b, n in h.buckets.items()} for h in partial.durations},
    }


def published(by_period: dict[str, list[cells.Cell]]) -> list[api.Indicator]:
    """The merged figures of each period (months YYYY-MM or weeks YYYY-Www), suppressed."""
    figures = [
        figure
        for period in sorted(by_period)
        for figure in cells.figures(period, cells.merge(by_period[period]), PERSON_COUNTS)
    ]
    return [
        api.Indicator(
            month="" if periods.WEEK.fullmatch(f.period) else f.period,
            week=f.period if periods.WEEK.fullmatch(f.period) else "",
            name=f.name,
            breakdown=f.breakdown,
            unit=f.unit,
            value=f.value,
            suppressed=f.suppressed,
        )
        for f in cells.suppressed(figures, RELATIONS)
    ]


class EvaluationServicer(api_grpc.EvaluationServiceServicer):
    def __init__(
        self,
        router: Router,
        cells_table: Table,
        own_caller: str,
        caller: Callable[[], str | None] = current_caller,
    ) -> None:
        self.router = router
        self.cells = cells_table
        # Partial aggregates are unsuppressed: only the service's own instances, which call
        # each other with the service's token (Router.forward_metadata), may read them.
        self.own_caller = own_caller
        self.caller = caller

    def local(self, request: Request) -> list[api.PartialAggregate]:
        """The cells of the partitions held here, for the request's experiment and periods."""
        out = []
        for key, cell in self.cells.items():
            experiment, territory, period = parse_cell_key(key)
            if (
                experiment == request.experiment_id
                and territory == request.territory
                and asked_for(request, period)
            ):
                out.append(to_partial(period, cell))
        return out

    async def _checked(self, request: Request, context: grpc.aio.ServicerContext) -> None:
        try:
            check_request(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise

    async def GetPartialAggregates(
        self, request: api.GetPartialAggregatesRequest, context: grpc.aio.ServicerContext
    ) -> api.GetPartialAggregatesResponse:
        if self.caller() != self.own_caller:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "partial aggregates are unsuppressed: for the evaluation service's own "
                "instances only; ask GetIndicators",
            )
        await self._checked(request, context)
        return api.GetPartialAggregatesResponse(aggregates=self.local(request))

    async def GetIndicators(
        self, request: api.GetIndicatorsRequest, context: grpc.aio.ServicerContext
    ) -> api.GetIndicatorsResponse:
        await self._checked(request, context)
        partials = self.local(request)
        ask = api.GetPartialAggregatesRequest(
            experiment_id=request.experiment_id,
            territory=request.territory,
            from_month=request.from_month,
            to_month=request.to_month,
            period=request.period,
        )

        def call(channel: Any, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.EvaluationServiceStub(channel)
            return stub.GetPartialAggregates(ask, timeout=deadline, metadata=metadata)

        for answer in await self.router.ask_peers(self.cells, context, call):
            partials.extend(answer.aggregates)
        by_period: dict[str, list[cells.Cell]] = defaultdict(list)
        for partial in partials:
            by_period[partial.week or partial.month].append(from_partial(partial))
        return api.GetIndicatorsResponse(indicators=published(by_period))


def register(servicer: EvaluationServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_EvaluationServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["EvaluationService"].full_name]

    return add
