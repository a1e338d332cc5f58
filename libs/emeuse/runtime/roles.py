"""Who may call which gRPC method: the platform's one role matrix.

Each method of each service says whether it reads or changes data and which roles may
call it; the operator (the platform's own operations, the simulator, the evaluation report)
may call every method but those a service answers its own instances only. A service may
call every method of its own service (an instance
forwarding a call to the key's owner) and the methods other services need of it
(SERVICE_CALLS). The Guard (grpc_server.py) refuses any other call with PERMISSION_DENIED.

Care plans name a patient's care team. A read of one person is then checked for that person
(patient_refusal): chronic on the plans it holds (the readings care-team and coordinator
callers record too); access, home and prevention on the plans every instance follows
(care_teams.py: a care-team caller on the person's team, a coordinator of the person's
territory; UNAVAILABLE until the plans are first read), their changes of one person too,
and the gateway a coordinator's consents; coordination on its timelines' territory.
docs/security.md shows the matrix and the per-person checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from emeuse.runtime.auth import ON_BEHALF_OF, Caller

OPERATOR, SERVICE, CARE_TEAM = "operator", "service", "care-team"
COORDINATOR, EVALUATOR, PARTNER = "coordinator", "evaluator", "partner"

# Why each role touches a person's data, as the audit trail writes it: an HL7 v3
# PurposeOfUse code (FHIR AuditEvent.purposeOfEvent). docs/security.md says why each.
PURPOSE_OF_USE: dict[str, str] = {
    CARE_TEAM: "TREAT",  # treatment: the patient's own care team
    PARTNER: "TREAT",  # remote monitoring feeding the patient's care, under their consent
    COORDINATOR: "COC",  # coordination of care
    OPERATOR: "HOPERAT",  # healthcare operations
    SERVICE: "HOPERAT",
    EVALUATOR: "HRESCH",  # healthcare research: the experiments' evaluation
}


def purpose_of_use(role: str) -> str:
    """The PurposeOfUse code of a role; "" for none (a caller without a known token)."""
    return PURPOSE_OF_USE.get(role, "")


class Action(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class MethodRule:
    action: Action
    roles: frozenset[str]
    # Answered to the service's own instances only (not even the operator): why, and what
    # to call instead.
    internal: str = ""


def read(*roles: str) -> MethodRule:
    return MethodRule(Action.READ, frozenset({OPERATOR, *roles}))


def write(*roles: str) -> MethodRule:
    return MethodRule(Action.WRITE, frozenset({OPERATOR, *roles}))


CHRONIC = "emeuse.chronic.v1.ChronicService"
ACCESS = "emeuse.access.v1.AccessService"
HOME = "emeuse.home.v1.HomeService"
PREVENTION = "emeuse.prevention.v1.PreventionService"
GATEWAY = "emeuse.partners.v1.PartnerGatewayService"
EVALUATION = "emeuse.evaluation.v1.EvaluationService"
COORDINATION = "emeuse.coordination.v1.CoordinationService"

# gRPC service -> method -> rule. A method missing here is refused to every role but the
# operator (tests/unit/runtime/test_roles.py fails when a method of proto/ has no rule).
MATRIX: dict[str, dict[str, MethodRule]] = {
    CHRONIC: {
        "GetPatientSummary": read(CARE_TEAM, COORDINATOR),
        "GetCarePlan": read(CARE_TEAM, COORDINATOR),
        "GetPatientStatus": read(CARE_TEAM, COORDINATOR),
        "ListAlerts": read(CARE_TEAM, COORDINATOR),
        "RecordReading": write(CARE_TEAM, COORDINATOR, PARTNER),
        "IngestFhirObservation": write(CARE_TEAM, PARTNER),
        "EnrollPatient": write(COORDINATOR),
        "UpdateCarePlan": write(COORDINATOR),
        "AcknowledgeAlert": write(CARE_TEAM, COORDINATOR),
        "ResolveAlert": write(CARE_TEAM, COORDINATOR),
        "ReviewPointOfCareResult": write(CARE_TEAM),
    },
    ACCESS: {
        "ListPatientRequests": read(CARE_TEAM, COORDINATOR),
        "GetRequest": read(CARE_TEAM, COORDINATOR),
        "ListOpenRequests": read(COORDINATOR),
        "ListPlaces": read(CARE_TEAM, COORDINATOR),
        "GetPractitionerAgenda": read(CARE_TEAM, COORDINATOR),
        "RegisterPractitioner": write(COORDINATOR),
        "RegisterPlace": write(COORDINATOR),
        "PublishAvailability": write(CARE_TEAM, COORDINATOR),
        "RequestConsultation": write(CARE_TEAM, COORDINATOR),
        "BookSlot": write(CARE_TEAM, COORDINATOR),
        "ConfirmBooking": write(CARE_TEAM, COORDINATOR),
        "RescheduleBooking": write(CARE_TEAM, COORDINATOR),
        "CancelBooking": write(CARE_TEAM, COORDINATOR),
        "WithdrawRequest": write(CARE_TEAM, COORDINATOR),
        "RecordConsultationOutcome": write(CARE_TEAM),
    },
    HOME: {
        "GetHomeStatus": read(CARE_TEAM, COORDINATOR),
        "ListOpenIncidents": read(COORDINATOR),
        "EnrollHome": write(COORDINATOR),
        "UpdateContacts": write(COORDINATOR),
        "PlanVisit": write(COORDINATOR),
        "AcknowledgeIncident": write(CARE_TEAM, COORDINATOR),
        "ResolveIncident": write(CARE_TEAM, COORDINATOR),
        "CheckIn": write(CARE_TEAM),
        "CheckOut": write(CARE_TEAM),
    },
    PREVENTION: {
        "GetPersonSchedule": read(CARE_TEAM, COORDINATOR),
        # A coordinator with a territory reads its territory's campaigns only (the servicer).
        "GetCampaign": read(COORDINATOR, EVALUATOR),
        "GetCampaignStats": read(COORDINATOR, EVALUATOR),
        "EnrollPerson": write(COORDINATOR),
        "UpdatePreferences": write(COORDINATOR),
        "OptOut": write(COORDINATOR),
        "StartProgramme": write(CARE_TEAM, COORDINATOR),
        "EndProgramme": write(CARE_TEAM, COORDINATOR),
        # A care team or coordinator records a screening done or a dose given; a lab's or
        # a pharmacy's back end reports it through the gateway, where its consent is checked.
        "RecordPreventionAction": write(CARE_TEAM, COORDINATOR),
        "CreateCampaign": write(COORDINATOR),
        "ApproveCampaign": write(COORDINATOR),
        "PauseCampaign": write(COORDINATOR),
        "ResumeCampaign": write(COORDINATOR),
        "FinishCampaign": write(COORDINATOR),
    },
    GATEWAY: {
        "GetPatientConsents": read(COORDINATOR),
        "RecordConsent": write(COORDINATOR),
        "Replay": write(),
    },
    EVALUATION: {
        "GetIndicators": read(EVALUATOR, COORDINATOR),
        "GetPartialAggregates": MethodRule(
            Action.READ,
            frozenset(),
            internal="its figures are not suppressed; the published ones are GetIndicators'",
        ),
    },
    # A coordinator with a territory sees that territory's people only (the servicer checks).
    COORDINATION: {
        "GetPersonTimeline": read(COORDINATOR),
        "ListPeopleAtRisk": read(COORDINATOR),
    },
}
# Methods of other services a service calls with its own identity.
SERVICE_CALLS: dict[str, frozenset[str]] = {
    "access": frozenset({f"/{CHRONIC}/GetPatientSummary"}),
}
# Which service's callers file name serves which gRPC service (a service's own calls).
SERVICE_OF = {
    CHRONIC: "chronic",
    ACCESS: "access",
    HOME: "home",
    PREVENTION: "prevention",
    GATEWAY: "gateway",
    EVALUATION: "evaluation",
    COORDINATION: "coordination",
}


def rule_of(method: str) -> MethodRule | None:
    """The rule of a full method name, "/package.Service/Method"."""
    service, _, name = method.lstrip("/").partition("/")
    return MATRIX.get(service, {}).get(name)


def refusal(caller: Caller, method: str) -> str:
    """Why `caller` may not call `method`; "" when it may."""
    service = method.lstrip("/").partition("/")[0]
    rule = rule_of(method)
    own = caller.role == SERVICE and SERVICE_OF.get(service) == caller.caller_id
    if own:
        return ""
    if rule is not None and rule.internal:
        return f"{method} answers the service's own instances only: {rule.internal}"
    if caller.role == SERVICE:
        if method in SERVICE_CALLS.get(caller.caller_id, frozenset()):
            return ""
        return f"service {caller.caller_id} does not call {method}"
    if not caller.role:
        return (
            f"caller {caller.caller_id} has no role; give it one with "
            f"`emeuse callers add {caller.caller_id} --role ROLE`"
        )
    if caller.role == OPERATOR or (rule is not None and caller.role in rule.roles):
        return ""
    return f"role {caller.role} may not call {method}"


# The caller a call is answered for (the Guard sets it around the servicer): the original
# caller on a call another instance forwarded.
CURRENT_CALLER: ContextVar[Caller | None] = ContextVar("emeuse_current_caller", default=None)


def current_caller() -> Caller | None:
    return CURRENT_CALLER.get()


def patient_refusal(
    caller: Caller | None, care_team: list[str] | None, territory: str | None
) -> str:
    """Why `caller` may not see a patient whose care team (member ids) and territory are
    given (None: the patient has no plan here); "" when it may. A care-team member sees
    the patients whose team names them; a coordinator with a territory, that territory's."""
    if caller is None:
        return ""
    if caller.role == CARE_TEAM and caller.member not in (care_team or []):
        return f"caller {caller.caller_id} is not on this patient's care team"
    if caller.role == COORDINATOR and caller.territory and caller.territory != territory:
        return f"caller {caller.caller_id} coordinates territory {caller.territory} only"
    return ""


def territory_refusal(caller: Caller | None, territory: str) -> str:
    """Why `caller` may not list another territory's people (a coordinator asking for a
    territory not its own); "" when it may."""
    if caller is None or caller.role != COORDINATOR or not caller.territory:
        return ""
    if territory and territory != caller.territory:
        return f"caller {caller.caller_id} coordinates territory {caller.territory} only"
    return ""


def campaign_refusal(caller: Caller | None, territories: Sequence[str]) -> str:
    """Why `caller` may not create, change or read (the campaign and its reach) a campaign
    whose segment targets `territories` (département codes; none: all three); "" when it
    may. A coordinator with a territory starts, steers, ends and reads its own territory's
    campaigns only: one that also reaches another territory's people is another
    coordinator's (or the operator's)."""
    if caller is None or caller.role != COORDINATOR or not caller.territory:
        return ""
    if territories and set(territories) == {caller.territory}:
        return ""
    return f"caller {caller.caller_id} coordinates territory {caller.territory} only"


def sees_in_list(caller: Caller | None, care_team: list[str] | None, territory: str) -> bool:
    """Whether a list answered to `caller` shows an item of a patient whose care team
    (member ids; None: no plan here) and territory are given: a care-team member's lists
    show its patients only, a coordinator's with a territory that territory's only."""
    if caller is None:
        return True
    if caller.role == CARE_TEAM:
        return caller.member in (care_team or [])
    if caller.role == COORDINATOR and caller.territory:
        return territory == caller.territory
    return True


def acting_as_refusal(caller: Caller | None, member_id: str) -> str:
    """Why `caller` may not act as care-team member `member_id`; "" when it may: a member
    acknowledges and resolves as themselves only."""
    if caller is not None and caller.role == CARE_TEAM and member_id != caller.member:
        return f"caller {caller.caller_id} acts as care-team member {caller.member} only"
    return ""


def on_behalf_of() -> tuple[tuple[str, str], ...]:
    """Metadata naming the current caller, for a call forwarded to the key's owner, so the
    owner answers for that caller (its patient checks) rather than for the service."""
    caller = current_caller()
    if caller is None or caller.role == SERVICE:
        return ()
    return ((ON_BEHALF_OF, caller.caller_id),)


def matrix_table() -> str:
    """The matrix as the Markdown table docs/security.md shows (a test keeps them equal)."""
    shown = (CARE_TEAM, COORDINATOR, EVALUATOR, PARTNER)
    lines = [
        "| method | reads or writes | " + " | ".join(shown) + " | services |",
        "|---|---|" + "---|" * len(shown) + "---|",
    ]
    for service, rules in MATRIX.items():
        for name, rule in rules.items():
            method = f"/{service}/{name}"
            callers = sorted(c for c, methods in SERVICE_CALLS.items() if method in methods)
            if rule.internal:
                callers = ["its own instances only (not the operator)"]
            marks = " | ".join("yes" if role in rule.roles else "" for role in shown)
            lines.append(
                f"| `{service.rsplit('.', 1)[1]}.{name}` | {rule.action} | {marks} | "
                f"{', '.join(callers)} |"
            )
    return "\n".join(lines) + "\n"
