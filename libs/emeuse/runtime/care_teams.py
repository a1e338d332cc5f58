"""Who is on each patient's care team, read whole from the care-plan topic by every instance
of a service that answers care-team callers about one person (access, home, prevention) or
places a coordinator's patient by its plan (the gateway's RecordConsent).

Care plans name a patient's team (`CarePlanUpdated.care_team`) and travel with the
patient's territory (`ce_territory`). Chronic keeps them in its kernel table, split by
partition and keyed for its own rules; the other services hold no plan. So each of their
instances follows the compacted topic itself (runtime/follower.py, as the gateway follows
the consents): the last plan chronic accepts for a patient is the plan in force, a
tombstone removes it. A plan is accepted as chronic accepts it, with the same functions:
the record checks every consumer makes (events.read_event: envelope, id rules, key,
partition) and chronic's own check of a plan (`accepts`, services/chronic/care_plan.py's
check_care_plan, given by the service); a plan chronic dead-letters leaves the plan before
in force here too.

Until the topic was read to its end once, nothing is decided about a care-team caller: it
is answered UNAVAILABLE, never let in (nor refused) on a partial read.

One entry is a tuple (territory, member ids...) of interned strings: a member is on many
teams, so its id is held once (docs/security.md gives the cost per patient).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import grpc
import structlog

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated
from emeuse.platform.v1.dead_letter_pb2 import DeadLetterCause
from emeuse.registry import CARE_PLAN_UPDATED
from emeuse.runtime import follower
from emeuse.runtime.auth import Caller
from emeuse.runtime.envelope import CODE_OF_TERRITORY, header_map
from emeuse.runtime.events import read_event, read_failure
from emeuse.runtime.roles import CARE_TEAM, COORDINATOR, current_caller, patient_refusal

log = structlog.get_logger("emeuse.care_teams")
# What a care-team caller reads while the topic is read for the first time.
NOT_READ = (
    "care teams are still being read from "
    f"{CARE_PLAN_UPDATED.name} (the service started moments ago); try again in a few seconds"
)
Team = tuple[str, ...]  # (territory code, member id, ...)
# Chronic's check of a plan: raises InvalidEventError (why) for a plan it refuses.
PlanCheck = Callable[[CarePlanUpdated], None]


class CareTeamsNotReadError(RuntimeError):
    """The care-plan topic was not yet read to its end: no decision on a partial read."""


class CareTeams:
    def __init__(self, accepts: PlanCheck) -> None:
        # patient pseudonym -> (territory code, member ids...) of the plan in force.
        self.teams: dict[str, Team] = {}
        self.accepts = accepts
        self.ready = asyncio.Event()
        # The copy a (re)read fills, swapped in once caught up (follower.follow).
        self._fresh: dict[str, Team] | None = None

    def reloading(self) -> None:
        self._fresh = {}

    def caught_up(self) -> None:
        if self._fresh is not None:
            self.teams, self._fresh = self._fresh, None
        log.info("care_teams.ready", patients=len(self.teams))

    def apply(self, record: Any) -> None:
        """One consumed record of the care-plan topic."""
        teams = self._fresh if self._fresh is not None else self.teams
        if record.value is None:
            if record.key:
                teams.pop(record.key.decode(errors="replace"), None)
            return
        try:
            event = read_event(CARE_PLAN_UPDATED, record, header_map(record.headers))
            plan: CarePlanUpdated = event.message
            self.accepts(plan)
        except Exception as exc:  # whatever chronic dead-letters: the plan before stands
            # Logged as chronic's dead letter is, by cause and place: never the record's
            # ids, which may be what it was refused for.
            cause, _ = read_failure(exc)
            log.warning(
                "care_teams.plan_skipped",
                cause=DeadLetterCause.Name(cause),  # type: ignore[arg-type]
                partition=record.partition,
                offset=record.offset,
            )
            return
        territory = CODE_OF_TERRITORY[event.envelope.territory]
        members = (m.member_id for m in plan.care_team)
        teams[sys.intern(plan.patient_pseudonym)] = tuple(
            sys.intern(part) for part in (territory, *members)
        )

    def team_of(self, patient: str) -> Team | None:
        if not self.ready.is_set():
            raise CareTeamsNotReadError(NOT_READ)
        return self.teams.get(patient)

    def refusal(self, caller: Caller | None, patient: str, territory: str | None = None) -> str:
        """Why `caller` may not read or change `patient`'s data; "" when it may. A care-team
        member may for the patients whose plan in force names it; a coordinator with a
        territory, for the people of that territory: `territory`, where the service holds
        the person (its request, home or enrolment), else the plan's. No plan, no territory:
        refused the same way, so a refusal says nothing of existence. Other roles keep what
        the matrix gives them. CareTeamsNotReadError before the first full read, for a
        care-team caller."""
        if caller is None or caller.role not in (CARE_TEAM, COORDINATOR):
            return ""
        if caller.role == COORDINATOR and (not caller.territory or territory):
            return patient_refusal(caller, None, territory or None)
        team = self.team_of(patient)
        return patient_refusal(
            caller, list(team[1:]) if team else None, team[0] if team else territory
        )


async def check_caller(
    context: grpc.aio.ServicerContext,
    teams: CareTeams,
    patient: str,
    territory: str | None = None,
) -> None:
    """Abort the call unless its caller may read or change `patient`'s data
    (CareTeams.refusal): PERMISSION_DENIED with the reason, UNAVAILABLE before the care
    teams are read. Called where the service holds the person (the key's owner), so a
    forwarded call must name its original caller (roles.on_behalf_of)."""
    try:
        refusal = teams.refusal(current_caller(), patient, territory)
    except CareTeamsNotReadError as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        raise
    if refusal:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)


async def keep_following(teams: CareTeams, bootstrap: str) -> None:
    """Read the care-plan topic from its beginning, then follow it, until the service stops
    (its companions are cancelled then), started again after a broker failure."""
    await follower.keep_following(
        CARE_PLAN_UPDATED.name,
        CARE_PLAN_UPDATED.partitions,
        teams.apply,
        teams.ready,
        bootstrap,
        lambda: False,
        teams.reloading,
        teams.caught_up,
        whole_records=True,
    )
