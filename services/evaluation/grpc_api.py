"""EvaluationService servicer: merges every partition's cells, then suppresses small cells.

A territory's month is counted on every partition (processing.py), held by several
instances: GetIndicators reads the cells of the partitions held here and asks each other
instance for its own (GetPartialAggregates), merges them, and only then computes quantiles
and applies the small-cell rule, so suppression is decided on the whole figure.
"""

from __future__ import annotations

import re
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
from services.evaluation.domain import cells
from services.evaluation.processing import parse_cell_key

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
MAX_MONTHS = 60
Request = api.GetIndicatorsRequest | api.GetPartialAggregatesRequest


def check_request(request: Request) -> None:
    if not EXPERIMENT_ID.fullmatch(request.experiment_id):
        raise ValueError("experiment_id is not an experiment id ([a-z0-9][a-z0-9._-]*)")
    territory_from_code(request.territory)
    for name in ("from_month", "to_month"):
        if not MONTH.fullmatch(getattr(request, name)):
            raise ValueError(f"{name} must be a month YYYY-MM")
    if request.from_month > request.to_month:
        raise ValueError("from_month is after to_month")
    first, last = (int(m[:4]) * 12 + int(m[5:]) for m in (request.from_month, request.to_month))
    if last - first >= MAX_MONTHS:
        raise ValueError(f"at most {MAX_MONTHS} months per call")


def to_partial(month: str, cell: cells.Cell) -> api.PartialAggregate:
    return api.PartialAggregate(
        month=month,
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


def published(by_month: dict[str, list[cells.Cell]]) -> list[api.Indicator]:
    figures = [
        figure
        for month in sorted(by_month)
        for figure in cells.figures(month, cells.merge(by_month[month]), PERSON_COUNTS)
    ]
    return [
        api.Indicator(
            month=f.month,
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
        """The cells of the partitions held here, for the request's experiment and months."""
        out = []
        for key, cell in self.cells.items():
            experiment, territory, month = parse_cell_key(key)
            if (
                experiment == request.experiment_id
                and territory == request.territory
                and request.from_month <= month <= request.to_month
            ):
                out.append(to_partial(month, cell))
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
        )

        def call(channel: Any, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.EvaluationServiceStub(channel)
            return stub.GetPartialAggregates(ask, timeout=deadline, metadata=metadata)

        for answer in await self.router.ask_peers(self.cells, context, call):
            partials.extend(answer.aggregates)
        by_month: dict[str, list[cells.Cell]] = defaultdict(list)
        for partial in partials:
            by_month[partial.month].append(from_partial(partial))
        return api.GetIndicatorsResponse(indicators=published(by_month))


def register(servicer: EvaluationServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_EvaluationServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["EvaluationService"].full_name]

    return add
