"""PreventionService servicer.

Person calls are answered by the instance holding the person's partition (forwarded
there otherwise): writes publish an event to the person's handler and answer once it has
applied it. Campaign calls are answered from the campaign directory every instance
keeps; a change is published on top of the version read, and answers once the log shows
whether it won. Campaign stats add up every instance's people. A care-team caller reads
the schedules of its own patients only, and starts or ends their programmes and records
their actions on reminders only; a coordinator with a territory, those of the people
enrolled there (runtime/care_teams.py), and it enrols, changes the preferences of and
opts out that territory's people only, and creates, approves, pauses, resumes,
finishes, reads and counts (GetCampaign, GetCampaignStats) only campaigns for that
territory alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.message import Message as ProtoMessage

from emeuse.kernel.edge import Publisher
from emeuse.kernel.router import Router
from emeuse.kernel.tables import Table
from emeuse.place.v1.territory_pb2 import Territory
from emeuse.prevention.v1 import prevention_service_pb2 as api
from emeuse.prevention.v1 import prevention_service_pb2_grpc as api_grpc
from emeuse.prevention.v1.prevention_events_pb2 import (
    CampaignStatus,
    CampaignUpdated,
    OptOutRecorded,
    PersonEnrolled,
    PreferencesUpdated,
    PreventionActionRecorded,
    Programme,
    ProgrammeEnded,
    ProgrammeEndReason,
    ProgrammeStarted,
    QuietHours,
    ReminderScheduled,
)
from emeuse.registry import (
    CAMPAIGN_UPDATED,
    OPT_OUT_RECORDED,
    PERSON_ENROLLED,
    PREFERENCES_UPDATED,
    PREVENTION_ACTION_RECORDED,
    PROGRAMME_ENDED,
    PROGRAMME_STARTED,
    TopicSpec,
)
from emeuse.runtime.calls import call_event_id, publish_for_caller, require_pseudonym, until_applied
from emeuse.runtime.care_teams import CareTeams, check_caller
from emeuse.runtime.codec import InvalidEventError
from emeuse.runtime.envelope import (
    CODE_OF_TERRITORY,
    EXPERIMENT_ID,
    TERRITORY_CODES,
    territory_from_code,
    timestamp,
)
from emeuse.runtime.grpc_server import Registrar
from emeuse.runtime.roles import campaign_refusal, current_caller, on_behalf_of
from services.prevention import campaigns as campaign_codec
from services.prevention.campaigns import Directory
from services.prevention.domain import campaign as domain
from services.prevention.domain.actions import check_action, check_done_by
from services.prevention.domain.person import (
    CANCELLED,
    DELIVERED,
    FAILED,
    OPENED,
    SCHEDULED,
    SENT,
    Message,
    OptOutDone,
    PersonState,
    Profile,
)
from services.prevention.domain.programmes import BY_NAME
from services.prevention.handlers import (
    PROGRAMME_NAMES,
    NotEligibleError,
    check_channels,
    check_code,
    check_eligible,
    check_enrolment,
    check_language,
    check_programme_start,
    check_quiet_hours,
    scheduled_fact,
    skipped_steps,
)
from services.prevention.processing import applied_key

# How long a write waits for the person's handler, or the campaign log, to apply it.
APPLY_WAIT_S = 10.0
MESSAGE_STATUS = {
    SCHEDULED: api.MessageStatus.MESSAGE_STATUS_SCHEDULED,
    SENT: api.MessageStatus.MESSAGE_STATUS_SENT,
    DELIVERED: api.MessageStatus.MESSAGE_STATUS_DELIVERED,
    OPENED: api.MessageStatus.MESSAGE_STATUS_OPENED,
    FAILED: api.MessageStatus.MESSAGE_STATUS_FAILED,
    CANCELLED: api.MessageStatus.MESSAGE_STATUS_CANCELLED,
}
COUNTED = ("targeted", "sent", "delivered", "opened", "clicked", "failed", "opted_out", "scheduled")


class PreventionServicer(api_grpc.PreventionServiceServicer):
    def __init__(
        self, router: Router, bus: Publisher, states: Table, directory: Directory, teams: CareTeams
    ) -> None:
        self.router = router
        self.bus = bus
        self.states = states
        self.directory = directory
        self.teams = teams

    # -- plumbing -------------------------------------------------------------------

    def _state(self, person: str) -> PersonState:
        return PersonState.from_json(self.states.get(person))

    async def _routed(
        self,
        person: str,
        context: grpc.aio.ServicerContext,
        request: ProtoMessage,
        method: str,
        local: Callable[[], Awaitable[Any]],
        timeout: float = 0.0,
        for_caller: bool = False,
    ) -> Any:
        """`local` on the person's owner, the call forwarded there otherwise (`for_caller`:
        naming the original caller, whom the owner checks)."""

        async def remote(channel: grpc.aio.Channel, deadline: float, metadata: Any) -> Any:
            call = getattr(api_grpc.PreventionServiceStub(channel), method)
            if for_caller:
                metadata = (*metadata, *on_behalf_of())
            return await call(request, timeout=deadline + timeout, metadata=metadata)

        return await self.router.answer(self.states, person, context, local, remote)

    async def _publish(
        self,
        context: grpc.aio.ServicerContext,
        spec: TopicSpec,
        message: ProtoMessage,
        *,
        key: str,
        subject: str,
        territory: Territory.ValueType,
        experiment: str | None = None,
        event_id: str | None = None,
    ) -> str:
        return await publish_for_caller(
            context,
            self.bus,
            spec,
            message,
            key=key,
            subject=subject,
            territory=territory,
            experiment=experiment,
            event_id=event_id,
        )

    async def _until(self, context: grpc.aio.ServicerContext, applied: Callable[[], Any]) -> Any:
        return await until_applied(context, applied, APPLY_WAIT_S)

    async def _applied(self, context: grpc.aio.ServicerContext, person: str, event_id: str) -> Any:
        key = applied_key(event_id)

        def applied() -> PersonState | None:
            state = self._state(person)
            return state if state.has_seen(key) else None

        return await self._until(context, applied)

    @staticmethod
    async def _checked(context: grpc.aio.ServicerContext, check: Callable[[], Any]) -> Any:
        try:
            return check()
        except (InvalidEventError, ValueError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    async def _check_caller(self, context: grpc.aio.ServicerContext, person: str) -> None:
        """Let the caller act on the person or abort (care_teams.check_caller): checked
        before anything is said of the person's enrolment or programmes."""
        profile = self._state(person).profile
        await check_caller(context, self.teams, person, profile.territory if profile else None)

    async def _enrolled(self, context: grpc.aio.ServicerContext, person: str) -> PersonState:
        state = self._state(person)
        if state.profile is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the person is not enrolled; EnrollPerson first",
            )
        return state

    # -- people ---------------------------------------------------------------------

    async def GetPersonSchedule(
        self, request: api.GetPersonScheduleRequest, context: grpc.aio.ServicerContext
    ) -> api.GetPersonScheduleResponse:
        person = request.person_pseudonym
        await require_pseudonym(context, person, "person_pseudonym")

        async def local() -> api.GetPersonScheduleResponse:
            stored = self.states.get(person)
            profile = PersonState.from_json(stored).profile
            await check_caller(context, self.teams, person, profile.territory if profile else None)
            return person_schedule(person, stored)

        return await self._routed(
            person, context, request, "GetPersonSchedule", local, for_caller=True
        )

    async def EnrollPerson(
        self, request: api.EnrollPersonRequest, context: grpc.aio.ServicerContext
    ) -> api.EnrollPersonResponse:
        enrolment = request.person
        person = enrolment.person_pseudonym
        await require_pseudonym(context, person, "person.person_pseudonym")
        if enrolment.territory not in CODE_OF_TERRITORY:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "person.territory must be 52, 54 or 55"
            )
        await self._checked(context, lambda: check_channels(list(enrolment.allowed_channels)))
        if not enrolment.allowed_channels:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "allow at least one channel")
        await self._checked(context, lambda: check_enrolment(enrolment))
        await _experiment(context, request.experiment_id)
        # A coordinator enrols people in its territory, and changes those enrolled there.
        territory = CODE_OF_TERRITORY[enrolment.territory]
        await check_caller(context, self.teams, person, territory)

        async def local() -> api.EnrollPersonResponse:
            # Enrolment is an upsert: an enrolled person's profile is replaced (a new age
            # band, territory...). The same data again changes nothing and answers the
            # enrolment that set it (a repeat after a lost answer).
            before = self._state(person)
            known = before.profile
            if known is not None:
                await check_caller(context, self.teams, person, known.territory)
            asked = check_enrolment(enrolment)
            # The experiment is part of the profile (processing.enrol): asked in another,
            # the person moves to it.
            asked.experiment = request.experiment_id
            if known is not None and known.enrolled_by and same_profile(known, asked):
                return api.EnrollPersonResponse(
                    event_id=known.enrolled_by, scheduled=_scheduled(person, before.scheduled())
                )
            event_id = await self._publish(
                context,
                PERSON_ENROLLED,
                enrolment,
                key=person,
                subject=person,
                territory=enrolment.territory,
                experiment=request.experiment_id,
            )
            state = await self._applied(context, person, event_id)
            return api.EnrollPersonResponse(
                event_id=event_id, scheduled=_scheduled(person, state.scheduled())
            )

        return await self._routed(
            person, context, request, "EnrollPerson", local, APPLY_WAIT_S, for_caller=True
        )

    async def UpdatePreferences(
        self, request: api.UpdatePreferencesRequest, context: grpc.aio.ServicerContext
    ) -> api.UpdatePreferencesResponse:
        person = request.person_pseudonym
        await require_pseudonym(context, person, "person_pseudonym")
        await self._checked(context, lambda: check_channels(list(request.allowed_channels)))
        await self._checked(context, lambda: check_channels(list(request.consented_channels)))
        if request.HasField("quiet_hours"):
            quiet = request.quiet_hours
            await self._checked(
                context, lambda: check_quiet_hours(quiet.start_minute, quiet.end_minute)
            )
        await self._checked(context, lambda: check_language(request.language))

        async def local() -> api.UpdatePreferencesResponse:
            await self._check_caller(context, person)
            state = await self._enrolled(context, person)
            change = PreferencesUpdated(
                person_pseudonym=person,
                change_id=str(uuid.uuid4()),
                allowed_channels=request.allowed_channels,
                consented_channels=request.consented_channels,
                language=request.language,
                updated_at=timestamp(datetime.now(UTC)),
            )
            if request.HasField("quiet_hours"):
                change.quiet_hours.CopyFrom(request.quiet_hours)
            assert state.profile is not None
            event_id = await self._publish(
                context,
                PREFERENCES_UPDATED,
                change,
                key=person,
                subject=person,
                territory=territory_from_code(state.profile.territory),
                experiment=state.profile.experiment or None,
            )
            applied = await self._applied(context, person, event_id)
            return api.UpdatePreferencesResponse(profile=_profile(person, applied))

        return await self._routed(
            person, context, request, "UpdatePreferences", local, APPLY_WAIT_S, for_caller=True
        )

    async def OptOut(
        self, request: api.OptOutRequest, context: grpc.aio.ServicerContext
    ) -> api.OptOutResponse:
        person = request.person_pseudonym
        await require_pseudonym(context, person, "person_pseudonym")
        await self._checked(context, lambda: check_channels(list(request.channels)))
        reason = request.reason_code or "person.request"
        await self._checked(context, lambda: check_code(reason, "reason_code"))

        opt_out_id = request.opt_out_id or str(uuid.uuid4())

        async def local() -> api.OptOutResponse:
            before = self._state(person)
            # A coordinator opts out the people enrolled in its territory, and those never
            # enrolled whom the call places there.
            named = CODE_OF_TERRITORY.get(request.territory)
            where = before.profile.territory if before.profile is not None else named
            await check_caller(context, self.teams, person, where)
            if opt_out_id in before.opt_outs:  # asked again after a lost answer
                return _opt_out_answer(before.opt_outs[opt_out_id])
            if before.profile is not None:
                territory = territory_from_code(before.profile.territory)
            elif request.territory in CODE_OF_TERRITORY:
                territory = request.territory
            else:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "the person was never enrolled: name their territory",
                )
            refusal = OptOutRecorded(
                person_pseudonym=person,
                opt_out_id=opt_out_id,
                channels=request.channels,
                reason_code=reason,
                opted_out_at=timestamp(datetime.now(UTC)),
            )
            # In the experiment the person was enrolled in, where the evaluation counts it.
            experiment = before.profile.experiment if before.profile is not None else ""
            event_id = await self._publish(
                context,
                OPT_OUT_RECORDED,
                refusal,
                key=person,
                subject=person,
                territory=territory,
                experiment=experiment or None,
            )
            after = await self._applied(context, person, event_id)
            # What the handler recorded when it applied this opt-out (nothing, had an
            # earlier call with its id been applied meanwhile: then that one's answer).
            return _opt_out_answer(after.opt_outs.get(opt_out_id, OptOutDone()))

        return await self._routed(
            person, context, request, "OptOut", local, APPLY_WAIT_S, for_caller=True
        )

    async def StartProgramme(
        self, request: api.StartProgrammeRequest, context: grpc.aio.ServicerContext
    ) -> api.StartProgrammeResponse:
        person = request.person_pseudonym
        await require_pseudonym(context, person, "person_pseudonym")
        start = ProgrammeStarted(
            person_pseudonym=person,
            start_id=str(uuid.uuid4()),
            programme=request.programme,
            started_at=timestamp(datetime.now(UTC)),
        )
        if request.HasField("expected_due_date"):
            start.expected_due_date.CopyFrom(request.expected_due_date)
        if request.HasField("child_born_on"):
            start.child_born_on.CopyFrom(request.child_born_on)
        await self._checked(context, lambda: check_programme_start(start, datetime.now(UTC)))
        name = PROGRAMME_NAMES[request.programme]

        async def local() -> api.StartProgrammeResponse:
            await self._check_caller(context, person)
            state = await self._enrolled(context, person)
            try:
                check_eligible(request.programme, state)
            except NotEligibleError as exc:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            assert state.profile is not None
            # In the person's experiment (the call names none), as what it schedules.
            event_id = await self._publish(
                context,
                PROGRAMME_STARTED,
                start,
                key=person,
                subject=person,
                territory=territory_from_code(state.profile.territory),
                experiment=state.profile.experiment or None,
            )
            applied = await self._applied(context, person, event_id)
            mine = [m for m in applied.scheduled() if m.programme == name]
            skipped = skipped_steps(person, applied, name, datetime.now(UTC))
            return api.StartProgrammeResponse(
                scheduled=_scheduled(person, mine), skipped_steps=skipped
            )

        return await self._routed(
            person, context, request, "StartProgramme", local, APPLY_WAIT_S, for_caller=True
        )

    async def EndProgramme(
        self, request: api.EndProgrammeRequest, context: grpc.aio.ServicerContext
    ) -> api.EndProgrammeResponse:
        person = request.person_pseudonym
        await require_pseudonym(context, person, "person_pseudonym")
        name = PROGRAMME_NAMES.get(request.programme)
        if name is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "programme must be set")
            raise AssertionError
        if request.reason == ProgrammeEndReason.PROGRAMME_END_REASON_UNSPECIFIED:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "reason must be set")

        async def local() -> api.EndProgrammeResponse:
            await self._check_caller(context, person)
            before = await self._enrolled(context, person)
            current = before.programmes.get(name)
            if current is not None and not current.running and current.end_reason == request.reason:
                # Ended already for this reason (asked again after a lost answer).
                return api.EndProgrammeResponse(cancelled_message_ids=_ended_with(before, name))
            if current is None or not current.running:
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION, "the person is not in this programme"
                )
            assert before.profile is not None
            end = ProgrammeEnded(
                person_pseudonym=person,
                end_id=str(uuid.uuid4()),
                programme=request.programme,
                reason=request.reason,
                ended_at=request.ended_at
                if request.HasField("ended_at")
                else timestamp(datetime.now(UTC)),
            )
            event_id = await self._publish(
                context,
                PROGRAMME_ENDED,
                end,
                key=person,
                subject=person,
                territory=territory_from_code(before.profile.territory),
                experiment=before.profile.experiment or None,
            )
            after = await self._applied(context, person, event_id)
            waiting = {m.message_id for m in before.scheduled() if m.programme == name}
            cancelled = sorted(
                m.message_id
                for m in after.messages.values()
                if m.message_id in waiting and m.status == CANCELLED
            )
            return api.EndProgrammeResponse(cancelled_message_ids=cancelled)

        return await self._routed(
            person, context, request, "EndProgramme", local, APPLY_WAIT_S, for_caller=True
        )

    async def RecordPreventionAction(
        self, request: api.RecordPreventionActionRequest, context: grpc.aio.ServicerContext
    ) -> api.RecordPreventionActionResponse:
        person = request.person_pseudonym
        await require_pseudonym(context, person, "person_pseudonym")
        now = datetime.now(UTC)
        action = PreventionActionRecorded(
            # Asked again with its id, the same action: the evaluation counts it once.
            action_id=request.action_id or str(uuid.uuid4()),
            person_pseudonym=person,
            programme=request.programme,
            campaign_id=request.campaign_id,
            kind=request.kind,
            acted_at=request.acted_at if request.HasField("acted_at") else timestamp(now),
        )

        def check() -> None:
            check_code(action.action_id, "action_id")
            if action.campaign_id:
                check_code(action.campaign_id, "campaign_id")
            check_action(action)
            check_done_by(action, now)

        await self._checked(context, check)

        async def local() -> api.RecordPreventionActionResponse:
            await self._check_caller(context, person)
            state = await self._enrolled(context, person)
            assert state.profile is not None
            # In the person's experiment and territory, as the reminders it answers.
            await self._publish(
                context,
                PREVENTION_ACTION_RECORDED,
                action,
                key=person,
                subject=person,
                territory=territory_from_code(state.profile.territory),
                experiment=state.profile.experiment or None,
                # Asked again after a lost answer: the same event, not a second one.
                event_id=call_event_id(person, "prevention-action", action.action_id),
            )
            return api.RecordPreventionActionResponse(action=action)

        return await self._routed(
            person, context, request, "RecordPreventionAction", local, for_caller=True
        )

    # -- campaigns ------------------------------------------------------------------

    async def _directory_ready(self, context: grpc.aio.ServicerContext) -> None:
        try:
            await asyncio.wait_for(self.directory.ready.wait(), APPLY_WAIT_S)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "campaigns are still being read; ask again shortly"
            )

    async def _campaign(
        self, context: grpc.aio.ServicerContext, campaign_id: str
    ) -> domain.CampaignDef:
        await self._directory_ready(context)
        campaign = self.directory.get(campaign_id)
        if campaign is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such campaign")
            raise AssertionError
        return campaign

    async def _write_campaign(
        self, context: grpc.aio.ServicerContext, campaign: domain.CampaignDef
    ) -> api.Campaign:
        """Publish the campaign's next version; answer once the log shows it won."""
        update = campaign_codec.to_message(campaign)
        update.changed_at.CopyFrom(timestamp(datetime.now(UTC)))
        territories = campaign.segment.territories or ["55"]
        await self._publish(
            context,
            CAMPAIGN_UPDATED,
            update,
            key=campaign.campaign_id,
            subject="",
            territory=TERRITORY_CODES[territories[0]],
            experiment=campaign.experiment_id,
        )

        def logged() -> domain.CampaignDef | None:
            now = self.directory.get(campaign.campaign_id)
            return now if now is not None and now.version >= campaign.version else None

        current = await self._until(context, logged)
        if current.version != campaign.version or current.write_id != campaign.write_id:
            await context.abort(
                grpc.StatusCode.ABORTED, "the campaign changed meanwhile; read it and try again"
            )
        return campaign_view(current)

    async def CreateCampaign(
        self, request: api.CreateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> api.CreateCampaignResponse:
        update = CampaignUpdated()
        update.CopyFrom(request.campaign)
        update.campaign_id = update.campaign_id or f"cmp-{uuid.uuid4().hex[:16]}"
        update.version, update.status = 1, CampaignStatus.CAMPAIGN_STATUS_DRAFT
        update.write_id, update.approved_by = str(uuid.uuid4()), ""
        update.changed_by = update.created_by
        if not update.created_by:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "created_by must name the designer"
            )
        if not EXPERIMENT_ID.fullmatch(update.experiment_id):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "experiment_id is not an experiment id"
            )
        campaign = await self._checked(context, lambda: campaign_codec.from_message(update))
        if campaign.end_at <= datetime.now(UTC):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "end_at is past")
        await _check_campaign_caller(context, campaign)
        await self._directory_ready(context)
        known = self.directory.get(campaign.campaign_id)
        if known is not None:
            if same_definition(known, campaign):
                # Created already (asked again after a lost answer): the campaign as it is.
                return api.CreateCampaignResponse(campaign=campaign_view(known))
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "another campaign has this id")
        try:
            view = await self._write_campaign(context, campaign)
        except grpc.aio.AbortError:
            raise
        return api.CreateCampaignResponse(campaign=view)

    async def _transition(
        self,
        context: grpc.aio.ServicerContext,
        campaign_id: str,
        actor: str,
        to: str,
        allowed_from: tuple[str, ...],
    ) -> api.Campaign:
        if not actor:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name who makes the change")
        await self._checked(context, lambda: check_code(actor, "staff ids"))
        current = await self._campaign(context, campaign_id)
        # Before its status is said or its change answered as done already.
        await _check_campaign_caller(context, current)
        now = datetime.now(UTC)
        status = current.status_at(now)
        if current.status == to:
            return campaign_view(current)  # already done: the call is idempotent
        if status not in allowed_from:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"the campaign is {status}")
        if to == domain.APPROVED and current.status == domain.DRAFT and actor == current.created_by:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "a campaign is approved by someone else than its designer",
            )
        changed = current.model_copy(
            update={
                "version": current.version + 1,
                "write_id": str(uuid.uuid4()),
                "status": to,
                "approved_by": actor if current.status == domain.DRAFT else current.approved_by,
            }
        )
        return await self._write_campaign(context, changed)

    async def ApproveCampaign(
        self, request: api.ApproveCampaignRequest, context: grpc.aio.ServicerContext
    ) -> api.ApproveCampaignResponse:
        view = await self._transition(
            context, request.campaign_id, request.approver_id, domain.APPROVED, (domain.DRAFT,)
        )
        return api.ApproveCampaignResponse(campaign=view)

    async def PauseCampaign(
        self, request: api.PauseCampaignRequest, context: grpc.aio.ServicerContext
    ) -> api.PauseCampaignResponse:
        view = await self._transition(
            context,
            request.campaign_id,
            request.actor_id,
            domain.PAUSED,
            (domain.APPROVED, domain.RUNNING),
        )
        return api.PauseCampaignResponse(campaign=view)

    async def ResumeCampaign(
        self, request: api.ResumeCampaignRequest, context: grpc.aio.ServicerContext
    ) -> api.ResumeCampaignResponse:
        # Resumed already (asked again), it answers as it stands, as the other transitions;
        # a campaign neither paused nor approved is FAILED_PRECONDITION.
        view = await self._transition(
            context, request.campaign_id, request.actor_id, domain.APPROVED, (domain.PAUSED,)
        )
        return api.ResumeCampaignResponse(campaign=view)

    async def FinishCampaign(
        self, request: api.FinishCampaignRequest, context: grpc.aio.ServicerContext
    ) -> api.FinishCampaignResponse:
        view = await self._transition(
            context,
            request.campaign_id,
            request.actor_id,
            domain.FINISHED,
            (domain.DRAFT, domain.APPROVED, domain.RUNNING, domain.PAUSED),
        )
        return api.FinishCampaignResponse(campaign=view)

    async def GetCampaign(
        self, request: api.GetCampaignRequest, context: grpc.aio.ServicerContext
    ) -> api.GetCampaignResponse:
        campaign = await self._campaign(context, request.campaign_id)
        await _check_campaign_caller(context, campaign)
        return api.GetCampaignResponse(campaign=campaign_view(campaign))

    async def GetCampaignStats(
        self, request: api.GetCampaignStatsRequest, context: grpc.aio.ServicerContext
    ) -> api.GetCampaignStatsResponse:
        campaign = await self._campaign(context, request.campaign_id)
        # Before any instance counts: another territory's reach is not this caller's.
        await _check_campaign_caller(context, campaign)
        by_territory: dict[str, dict[str, int]] = {}
        for _, stored in self.states.items():
            reach = (stored or {}).get("reach", {}).get(campaign.campaign_id)
            if reach:
                add_reach(by_territory, reach)
        # People are spread over the instances: each counts its own.
        for answer in await self.router.ask_peers(
            self.states,
            context,
            lambda channel, deadline, metadata: api_grpc.PreventionServiceStub(
                channel
            ).GetCampaignStats(request, timeout=deadline, metadata=metadata),
        ):
            for share in answer.by_territory:
                counts = by_territory.setdefault(
                    CODE_OF_TERRITORY.get(share.territory, ""), dict.fromkeys(COUNTED, 0)
                )
                for name in COUNTED:
                    counts[name] += getattr(share.counts, name)
        return stats_response(campaign, by_territory, datetime.now(UTC))


async def _check_campaign_caller(
    context: grpc.aio.ServicerContext, campaign: domain.CampaignDef
) -> None:
    """Abort unless the caller may see, create or change `campaign` (roles.campaign_refusal):
    a coordinator with a territory, for a campaign of its territory's people only."""
    if refusal := campaign_refusal(current_caller(), campaign.segment.territories):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)


async def _experiment(context: grpc.aio.ServicerContext, experiment: str) -> None:
    if not EXPERIMENT_ID.fullmatch(experiment):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, "experiment_id is not an experiment id"
        )


def add_reach(by_territory: dict[str, dict[str, int]], reach: dict[str, Any]) -> None:
    """Count one person's share of a campaign (a stored domain.person.Reach)."""
    counts = by_territory.setdefault(str(reach.get("territory", "")), dict.fromkeys(COUNTED, 0))
    counts["targeted"] += 1
    for name in ("sent", "delivered", "opened", "clicked", "failed", "opted_out"):
        counts[name] += int(bool(reach.get(name)))
    waiting = not reach.get("sent") and not reach.get("cancelled") and not reach.get("failed")
    counts["scheduled"] += int(waiting)


def stats_response(
    campaign: domain.CampaignDef, by_territory: dict[str, dict[str, int]], now: datetime
) -> api.GetCampaignStatsResponse:
    total = dict.fromkeys(COUNTED, 0)
    response = api.GetCampaignStatsResponse(
        campaign_id=campaign.campaign_id, status=campaign_codec.STATUS[campaign.status_at(now)]
    )
    for code in sorted(by_territory):
        counts = by_territory[code]
        for name in COUNTED:
            total[name] += counts[name]
        response.by_territory.add(
            territory=TERRITORY_CODES.get(code, Territory.TERRITORY_UNSPECIFIED),
            counts=api.CampaignCounts(**counts),
        )
    response.total.CopyFrom(api.CampaignCounts(**total))
    return response


def campaign_view(campaign: domain.CampaignDef) -> api.Campaign:
    return api.Campaign(
        definition=campaign_codec.to_message(campaign),
        status=campaign_codec.STATUS[campaign.status_at(datetime.now(UTC))],
    )


def _scheduled(person: str, messages: list[Message]) -> list[Any]:
    return [scheduled_fact(person, m).message for m in sorted(messages, key=lambda m: m.due_at)]


def _profile(person: str, state: PersonState) -> PersonEnrolled:
    profile = state.profile
    if profile is None:
        return PersonEnrolled(person_pseudonym=person)
    return PersonEnrolled(
        person_pseudonym=person,
        age_band_from=profile.age_from,
        age_band_to=profile.age_to,
        territory=TERRITORY_CODES.get(profile.territory, Territory.TERRITORY_UNSPECIFIED),
        # Refused channels are left out: a profile written back never re-allows them.
        allowed_channels=[c for c in profile.channels if c not in state.opted_out_channels],
        quiet_hours=QuietHours(start_minute=profile.quiet_start, end_minute=profile.quiet_end),
        language=profile.language,
    )


def person_schedule(
    person: str, state_json: dict[str, Any] | None
) -> api.GetPersonScheduleResponse:
    """The person's preferences, programmes and messages by due date; someone never
    enrolled gets an empty one."""
    state = PersonState.from_json(state_json)
    messages = sorted(state.messages.values(), key=lambda m: (m.due_at, m.message_id))
    response = api.GetPersonScheduleResponse(
        person_pseudonym=person,
        enrolled=state.enrolled,
        opted_out=state.opted_out_all,
        opted_out_channels=state.opted_out_channels,
        attributes=state.attributes,
    )
    if state.profile is not None:
        response.profile.CopyFrom(_profile(person, state))
    for message in messages:
        response.messages.add(
            message=scheduled_fact(person, message).message,
            status=MESSAGE_STATUS[message.status],
            attempts=message.attempts,
            sent_on=message.sent_on,
            cancel_reason=message.cancel_reason,
        )
        if message.open and message.programme in BY_NAME:
            response.reminders.append(
                ReminderScheduled(
                    reminder_id=message.message_id,
                    person_pseudonym=person,
                    programme=message.programme,
                    channel=message.channel,
                    due_at=timestamp(message.due_at),
                )
            )
    for name, programme in sorted(state.programmes.items()):
        view = response.programmes.add(
            programme=PROGRAMME_OF_NAME_VALUE[name],
            end_reason=programme.end_reason,
        )
        if programme.due_date is not None:
            view.expected_due_date.FromDatetime(
                datetime.combine(programme.due_date, datetime.min.time())
            )
        if programme.born_on is not None:
            view.child_born_on.FromDatetime(
                datetime.combine(programme.born_on, datetime.min.time())
            )
    return response


PROGRAMME_OF_NAME_VALUE: dict[str, Programme.ValueType] = {
    name: value for value, name in PROGRAMME_NAMES.items()
}


def same_definition(known: domain.CampaignDef, asked: domain.CampaignDef) -> bool:
    """Whether a campaign asked to be created is the one the log holds (its versions,
    status and approval aside)."""
    moving = {"version", "write_id", "status", "approved_by"}
    return known.model_dump(exclude=moving) == asked.model_dump(exclude=moving)


def _ended_with(state: PersonState, programme: str) -> list[str]:
    """The programme's messages its end cancelled."""
    return sorted(
        m.message_id
        for m in state.messages.values()
        if m.programme == programme
        and m.status == CANCELLED
        and m.cancel_reason == "programme_ended"
    )


def same_profile(known: Profile, asked: Profile) -> bool:
    """Whether an enrolment asks for the profile the person already has."""
    fixed = {"enrolled_at", "enrolled_by"}
    return known.model_dump(exclude=fixed) == asked.model_dump(exclude=fixed)


def register(servicer: PreventionServicer) -> Registrar:
    def add(server: grpc.aio.Server) -> list[str]:
        api_grpc.add_PreventionServiceServicer_to_server(servicer, server)
        return [api.DESCRIPTOR.services_by_name["PreventionService"].full_name]

    return add


def _opt_out_answer(done: OptOutDone) -> api.OptOutResponse:
    return api.OptOutResponse(cancelled_message_ids=done.cancelled, moved_message_ids=done.moved)
