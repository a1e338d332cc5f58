"""PartnerGatewayService: consents recorded through the patient's partition, replays run
by every instance on the partitions it holds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
from aiokafka import TopicPartition

from emeuse.audit.v1.audit_events_pb2 import PatientDataAccessed
from emeuse.kernel.edge import Publisher
from emeuse.kernel.router import Router
from emeuse.kernel.tables import Table
from emeuse.partners import PURPOSE
from emeuse.partners.v1 import gateway_service_pb2 as api
from emeuse.partners.v1 import gateway_service_pb2_grpc as api_grpc
from emeuse.partners.v1.partners_pb2 import ConsentChanged
from emeuse.registry import CONSENT_CHANGED
from emeuse.runtime import audit
from emeuse.runtime.audit import AuditTrail
from emeuse.runtime.calls import call_event_id, publish_for_caller, require_pseudonym, until_applied
from emeuse.runtime.care_teams import CareTeams, check_caller
from emeuse.runtime.codec import expected_partition
from emeuse.runtime.envelope import (
    EXPERIMENT_ID,
    TERRITORY_CODES,
    territory_from_code,
    timestamp,
)
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.pseudonym import is_pseudonym
from emeuse.runtime.roles import current_caller, on_behalf_of, patient_refusal
from services.gateway.directory import PartnerDirectory
from services.gateway.domain.consent import ConsentBook
from services.gateway.replay import replay_partitions
from services.gateway.topics import source_topics

APPLY_WAIT_S = 10.0
# A replay without a start: from the beginning of what the topics keep.
EVERYTHING = datetime(1970, 1, 1, tzinfo=UTC)
# A replay reads up to the partitions' ends: the forwarded call gets this long.
REPLAY_DEADLINE_S = 120.0
REPLAY_METHOD = "/emeuse.partners.v1.PartnerGatewayService/Replay"


class GatewayServicer(api_grpc.PartnerGatewayServiceServicer):
    def __init__(
        self,
        router: Router,
        bus: Publisher,
        consents: Table,
        directory: PartnerDirectory,
        bootstrap: str,
        teams: CareTeams,
        audit: AuditTrail | None = None,
    ) -> None:
        self.audit = audit
        self.router = router
        self.bus = bus
        self.consents = consents
        self.directory = directory
        self.bootstrap = bootstrap
        self.teams = teams

    def book(self, patient: str) -> ConsentBook:
        return ConsentBook.from_json(self.consents.get(patient))

    async def RecordConsent(
        self, request: api.RecordConsentRequest, context: grpc.aio.ServicerContext
    ) -> api.RecordConsentResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")
        if request.territory not in TERRITORY_CODES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "territory must be 52, 54 or 55")
        # A coordinator records the consents of its territory's patients: the territory the
        # call names (the consent's envelope), and the patient's as the care plans place it
        # (every instance follows them; no plan, refused as another territory's).
        if refusal := patient_refusal(current_caller(), None, request.territory):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
        await check_caller(context, self.teams, patient)
        if not EXPERIMENT_ID.fullmatch(request.experiment_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "experiment_id is not an id")
        if not PURPOSE.fullmatch(request.purpose):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "purpose must be a code")
        covers_from = None
        if request.HasField("covers_from"):
            if not request.granted:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "covers_from is for a grant, not a withdrawal"
                )
            covers_from = request.covers_from.ToDatetime(tzinfo=UTC)
            # What the patient agreed to share is data that exists: not a date to come.
            if covers_from > datetime.now(UTC):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "covers_from is in the future"
                )
        await self.directory.ready.wait()
        partner = self.directory.active(request.partner_id)
        if partner is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such partner (or removed)")
            raise AssertionError
        if request.purpose not in partner.purposes:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "purpose is not one of the partner's"
            )

        async def local() -> api.RecordConsentResponse:
            # The Nth change of a consent has an id derived from N: a change asked again
            # (a lost answer) finds the consent already standing as asked, and is answered
            # with that change's id, nothing published.
            history = self.book(patient).changes.get(
                ConsentBook.key(request.partner_id, request.purpose), []
            )
            # A grant standing with another coverage is a new change (the patient agreed to
            # share from another date).
            if (
                history
                and history[-1].granted == request.granted
                and history[-1].covers_from == covers_from
            ):
                return api.RecordConsentResponse(event_id=_change_id(request, len(history) - 1))
            now = datetime.now(UTC)
            change = ConsentChanged(
                patient_pseudonym=patient,
                partner_id=request.partner_id,
                purpose=request.purpose,
                granted=request.granted,
                changed_at=timestamp(now),
            )
            if covers_from is not None:
                change.covers_from.CopyFrom(request.covers_from)
            event_id = await publish_for_caller(
                context,
                self.bus,
                CONSENT_CHANGED,
                change,
                key=CONSENT_CHANGED.record_key(change) or patient,
                subject=patient,
                territory=territory_from_code(request.territory),
                experiment=request.experiment_id,
                occurred_at=now,
                event_id=_change_id(request, len(history)),
            )
            # Answer once the gateway applies it: the feeds follow it from then on.
            stated = change.changed_at.ToDatetime(tzinfo=UTC)
            key = ConsentBook.key(request.partner_id, request.purpose)

            def applied() -> bool:
                history = self.book(patient).changes.get(key, [])
                return any(c.stated_at == stated and c.granted == request.granted for c in history)

            await until_applied(context, applied, APPLY_WAIT_S)
            return api.RecordConsentResponse(event_id=event_id)

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.PartnerGatewayServiceStub(channel)
            return await stub.RecordConsent(
                request, timeout=deadline + APPLY_WAIT_S, metadata=metadata
            )

        return await self.router.answer(self.consents, patient, context, local, remote)

    async def GetPatientConsents(
        self, request: api.GetPatientConsentsRequest, context: grpc.aio.ServicerContext
    ) -> api.GetPatientConsentsResponse:
        patient = request.patient_pseudonym
        await require_pseudonym(context, patient, "patient_pseudonym")
        # Read as recorded: a coordinator, the consents of its territory's patients only.
        await check_caller(context, self.teams, patient)

        async def local() -> api.GetPatientConsentsResponse:
            book = self.book(patient)
            response = api.GetPatientConsentsResponse()
            for key, history in sorted(book.changes.items()):
                partner_id, purpose = key.split("|", 1)
                consent = response.consents.add(
                    partner_id=partner_id,
                    purpose=purpose,
                    stands=book.stands(partner_id, purpose),
                )
                for change in history:
                    shown = consent.history.add(
                        granted=change.granted, changed_at=timestamp(change.at)
                    )
                    if change.covers_from is not None:
                        shown.covers_from.CopyFrom(timestamp(change.covers_from))
            return response

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            stub = api_grpc.PartnerGatewayServiceStub(channel)
            return await stub.GetPatientConsents(request, timeout=deadline, metadata=metadata)

        return await self.router.answer(self.consents, patient, context, local, remote)

    async def Replay(
        self, request: api.ReplayRequest, context: grpc.aio.ServicerContext
    ) -> api.ReplayResponse:
        await self.directory.ready.wait()
        partner = self.directory.active(request.partner_id)
        if partner is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such partner (or removed)")
            raise AssertionError
        patient = request.patient_pseudonym
        if patient:
            await require_pseudonym(context, patient, "patient_pseudonym")
        if request.HasField("since"):
            since = request.since.ToDatetime(tzinfo=UTC)
        elif patient:
            since = EVERYTHING  # a backfill: all the patient's consent covers
        else:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "since is required (unless patient_pseudonym)"
            )
            raise AssertionError
        forwarded = self.router.is_forwarded(context)
        asked_id = dict(context.invocation_metadata() or ()).get("x-emeuse-replay-id")
        replay_id = str(asked_id) if forwarded and asked_id else str(uuid.uuid4())
        # Each instance replays the source partitions it holds (their consents are here).
        held = [
            TopicPartition(spec.name, p)
            for spec in source_topics()
            for p in range(spec.partitions)
            if self._holds(spec.name, p)
            # One patient's events are all on the patient's partition (keyed by it).
            and (not patient or p == expected_partition(patient.encode(), spec.partitions))
        ]
        # A replay for everyone names no person: each instance records the persons whose
        # events it delivered (a backfill's request names its patient: the guard's record).
        delivered: set[str] = set()
        try:
            sent, withheld = await replay_partitions(
                bus=self.bus,
                bootstrap=self.bootstrap,
                partner=partner,
                since=since,
                partitions=held,
                consents=self.book,
                replay_id=replay_id,
                patient=patient,
                delivered=None if patient else delivered,
            )
        finally:
            if self.audit is not None and delivered:
                await self.audit.record_paced(delivery_records(delivered, replay_id))
        for answer in await self.router.ask_peers(
            self.consents,
            context,
            lambda channel, deadline, metadata: api_grpc.PartnerGatewayServiceStub(channel).Replay(
                request, timeout=deadline, metadata=metadata
            ),
            timeout=REPLAY_DEADLINE_S,
            # Each instance's audit records name who asked, not this instance.
            metadata=(("x-emeuse-replay-id", replay_id), *on_behalf_of()),
        ):
            sent += answer.events_replayed
            withheld += answer.events_withheld
        return api.ReplayResponse(
            replay_id=replay_id, events_replayed=sent, events_withheld=withheld
        )

    def _holds(self, topic: str, partition: int) -> bool:
        # Source topics and consents are co-partitioned: partition p is one task here.
        return partition in self.router.kernel.tasks


def delivery_records(delivered: set[str], replay_id: str) -> Iterator[PatientDataAccessed]:
    """One audit record per person whose events a replay delivered to the partner: read
    (the partner received their data), by the caller who asked, under the replay's id."""
    caller = current_caller()
    subjects = sorted(s for s in delivered if is_pseudonym(s))
    for start in range(0, len(subjects), audit.BATCH):
        yield from audit.access_records(
            service="gateway",
            method=REPLAY_METHOD,
            caller_id=caller.caller_id if caller else "unknown",
            role=caller.role if caller else "",
            write=False,
            subjects=subjects[start : start + audit.BATCH],
            outcome=grpc.StatusCode.OK.name,
            call_id=replay_id,
        )


def _change_id(request: api.RecordConsentRequest, index: int) -> str:
    """The id of the consent's change number `index` (from 0), as asked."""
    return call_event_id(
        "consent",
        request.patient_pseudonym,
        request.partner_id,
        request.purpose,
        str(request.granted),
        str(index),
    )


def register(servicer: GatewayServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_PartnerGatewayServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["PartnerGatewayService"].full_name]

    return add
