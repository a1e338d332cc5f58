"""Who is on each patient's care team, read whole from the care-plan topic by every instance
of a service that answers care-team callers about one person (access, home, prevention).

Care plans name a patient's team (`CarePlanUpdated.care_team`) and travel with the
patient's territory (`ce_territory`). Chronic keeps them in its kernel table, split by
partition and keyed for its own rules; the other services hold no plan. So each of their
instances follows the compacted topic itself (runtime/follower.py, as the gateway follows
the consents): the last plan published for a patient is the plan in force, a tombstone
removes it. A plan naming no member or no territory (chronic dead-letters it and keeps the
plan before) leaves the plan before in force here too.

Until the topic was read to its end once, nothing is decided about a care-team caller: it
is answered UNAVAILABLE, never let in (nor refused) on a partial read.

One entry is a tuple (territory, member ids...) of interned strings: a member is on many
teams, so its id is held once (docs/security.md gives the cost per patient).
"""

from __future__ import annotations

import asyncio
import sys

import grpc
import structlog
from google.protobuf.message import DecodeError

from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated
from emeuse.registry import CARE_PLAN_UPDATED
from emeuse.runtime import follower
from emeuse.runtime.auth import Caller
from emeuse.runtime.envelope import CODE_OF_TERRITORY, H_TERRITORY
from emeuse.runtime.roles import CARE_TEAM, COORDINATOR, current_caller, patient_refusal

log = structlog.get_logger("emeuse.care_teams")
# What a care-team caller reads while the topic is read for the first time.
NOT_READ = (
    "care teams are still being read from "
    f"{CARE_PLAN_UPDATED.name} (the service started moments ago); try again in a few seconds"
)
Team = tuple[str, ...]  # (territory code, member id, ...)


class CareTeamsNotReadError(RuntimeError):
    """The care-plan topic was not yet read to its end: no decision on a partial read."""


class CareTeams:
    def __init__(self) -> None:
        # patient pseudonym -> (territory code, member ids...) of the plan in force.
        self.teams: dict[str, Team] = {}
        self.ready = asyncio.Event()
        # The copy a (re)read fills, swapped in once caught up (follower.follow).
        self._fresh: dict[str, Team] | None = None

    def reloading(self) -> None:
        self._fresh = {}

    def caught_up(self) -> None:
        if self._fresh is not None:
            self.teams, self._fresh = self._fresh, None
        log.info("care_teams.ready", patients=len(self.teams))

    def apply(self, key: bytes | None, value: bytes | None, headers: follower.Headers) -> None:
        """One record of the care-plan topic."""
        teams = self._fresh if self._fresh is not None else self.teams
        if value is None:
            if key:
                teams.pop(key.decode(errors="replace"), None)
            return
        try:
            plan = CarePlanUpdated.FromString(value)
        except DecodeError:
            log.warning("care_teams.unreadable")
            return
        territory = dict(headers).get(H_TERRITORY, b"").decode(errors="replace")
        members = [m.member_id for m in plan.care_team]
        # Logged by reason only: the ids of a record chronic refuses may be what it refused.
        if territory not in CODE_OF_TERRITORY.values():
            log.warning("care_teams.plan_skipped", reason="no programme territory")
            return
        if not plan.patient_pseudonym or not members or not all(members):
            log.warning("care_teams.plan_skipped", reason="no patient or no care-team member")
            return
        teams[sys.intern(plan.patient_pseudonym)] = tuple(
            sys.intern(part) for part in (territory, *members)
        )

    def team_of(self, patient: str) -> Team | None:
        if not self.ready.is_set():
            raise CareTeamsNotReadError(NOT_READ)
        return self.teams.get(patient)

    def refusal(self, caller: Caller | None, patient: str, territory: str | None = None) -> str:
        """Why `caller` may not read `patient`; "" when it may. A care-team member reads the
        patients whose plan in force names it; a coordinator with a territory, the people
        of that territory: `territory`, where the service holds the person (its request,
        home or enrolment), else the plan's. No plan, no territory: refused the same way, so
        a refusal says nothing of existence. Other roles keep what the matrix gives them.
        CareTeamsNotReadError before the first full read, for a care-team caller."""
        if caller is None or caller.role not in (CARE_TEAM, COORDINATOR):
            return ""
        if caller.role == COORDINATOR and (not caller.territory or territory):
            return patient_refusal(caller, None, territory or None)
        team = self.team_of(patient)
        return patient_refusal(
            caller, list(team[1:]) if team else None, team[0] if team else territory
        )


async def check_reader(
    context: grpc.aio.ServicerContext,
    teams: CareTeams,
    patient: str,
    territory: str | None = None,
) -> None:
    """Abort the call unless its caller may read `patient` (CareTeams.refusal):
    PERMISSION_DENIED with the reason, UNAVAILABLE before the care teams are read."""
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
        headers=True,
    )
