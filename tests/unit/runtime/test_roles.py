"""The role matrix: every method of the contract has a rule, and each role is allowed and
refused where docs/security.md says."""

from pathlib import Path

import pytest

from emeuse.access.v1 import access_service_pb2
from emeuse.chronic.v1 import chronic_service_pb2
from emeuse.coordination.v1 import coordination_service_pb2
from emeuse.evaluation.v1 import evaluation_service_pb2
from emeuse.home.v1 import home_service_pb2
from emeuse.partners.v1 import gateway_service_pb2
from emeuse.prevention.v1 import prevention_service_pb2
from emeuse.runtime.auth import Caller
from emeuse.runtime.roles import (
    MATRIX,
    Action,
    acting_as_refusal,
    matrix_table,
    patient_refusal,
    refusal,
    rule_of,
    sees_in_list,
    territory_refusal,
)

SERVICES = [
    service
    for module in (
        access_service_pb2,
        chronic_service_pb2,
        coordination_service_pb2,
        evaluation_service_pb2,
        home_service_pb2,
        gateway_service_pb2,
        prevention_service_pb2,
    )
    for service in module.DESCRIPTOR.services_by_name.values()
]
STATUS = "/emeuse.chronic.v1.ChronicService/GetPatientStatus"
LIST_ALERTS = "/emeuse.chronic.v1.ChronicService/ListAlerts"
SUMMARY = "/emeuse.chronic.v1.ChronicService/GetPatientSummary"
ENROL = "/emeuse.chronic.v1.ChronicService/EnrollPatient"
EVAL = "emeuse.evaluation.v1.EvaluationService"
INDICATORS = f"/{EVAL}/GetIndicators"
REPLAY = "/emeuse.partners.v1.PartnerGatewayService/Replay"
RECORD = "/emeuse.chronic.v1.ChronicService/RecordReading"
NURSE = Caller("nurse-1", "care-team", member="ide-0007")
COORDINATOR_55 = Caller("coord-55", "coordinator", territory="55")


def test_every_method_of_the_contract_has_exactly_one_rule():
    declared = {(s.full_name, m.name) for s in SERVICES for m in s.methods}
    ruled = {(service, name) for service, rules in MATRIX.items() for name in rules}
    assert declared - ruled == set(), "a method without a rule is refused to every role"
    assert ruled - declared == set(), "a rule for a method the contract does not have"


def test_reads_and_writes_are_told_apart():
    assert rule_of(STATUS).action == Action.READ
    assert rule_of(RECORD).action == Action.WRITE


def test_the_operator_may_call_every_method_but_those_for_a_services_own_instances():
    operator = Caller("operator", "operator")
    refused = [
        m.name for s in SERVICES for m in s.methods if refusal(operator, f"/{s.full_name}/{m.name}")
    ]
    assert refused == ["GetPartialAggregates"]
    assert refusal(Caller("evaluation", "service"), f"/{EVAL}/GetPartialAggregates") == ""
    assert "GetIndicators" in refusal(operator, f"/{EVAL}/GetPartialAggregates")


@pytest.mark.parametrize(
    "caller, allowed, refused",
    [
        (NURSE, LIST_ALERTS, ENROL),
        (COORDINATOR_55, LIST_ALERTS, REPLAY),
        (Caller("insee-team", "evaluator"), INDICATORS, STATUS),
        (Caller("partner-glucomind", "partner"), RECORD, STATUS),
        (Caller("access", "service"), SUMMARY, STATUS),
        (Caller("chronic", "service"), LIST_ALERTS, INDICATORS),
    ],
)
def test_each_role_is_allowed_its_methods_and_refused_others(caller, allowed, refused):
    assert refusal(caller, allowed) == ""
    assert refusal(caller, refused) != ""


def test_a_refusal_names_the_role_and_the_method():
    assert refusal(NURSE, ENROL) == f"role care-team may not call {ENROL}"
    assert refusal(Caller("home", "service"), STATUS) == f"service home does not call {STATUS}"


def test_a_caller_without_a_role_is_refused_everything_and_told_how_to_get_one():
    assert "emeuse callers add glucomind --role" in refusal(Caller("glucomind"), STATUS)


def test_a_care_team_member_sees_only_the_patients_whose_team_names_them():
    assert patient_refusal(NURSE, ["gp-1", "ide-0007"], "55") == ""
    assert "not on this patient's care team" in patient_refusal(NURSE, ["gp-1"], "55")
    assert "not on this patient's care team" in patient_refusal(NURSE, None, None)


def test_a_coordinator_with_a_territory_sees_only_that_territorys_patients():
    assert patient_refusal(COORDINATOR_55, ["gp-1"], "55") == ""
    assert "coordinates territory 55 only" in patient_refusal(COORDINATOR_55, ["gp-1"], "54")
    assert patient_refusal(Caller("coord", "coordinator"), ["gp-1"], "54") == ""


def test_other_roles_are_not_checked_per_patient():
    assert patient_refusal(Caller("access", "service"), None, None) == ""
    assert patient_refusal(None, None, None) == ""


def test_a_care_team_member_acts_on_alerts_as_themselves_only():
    assert acting_as_refusal(NURSE, "ide-0007") == ""
    assert "acts as care-team member ide-0007 only" in acting_as_refusal(NURSE, "gp-1")
    assert acting_as_refusal(COORDINATOR_55, "gp-1") == ""


def test_the_security_page_shows_the_matrix_as_declared():
    page = (Path(__file__).parents[3] / "docs" / "security.md").read_text()
    assert matrix_table() in page, "paste roles.matrix_table() into docs/security.md"


def test_a_coordinator_lists_its_own_territory_only():
    assert territory_refusal(COORDINATOR_55, "55") == ""
    assert territory_refusal(COORDINATOR_55, "") == ""
    assert (
        territory_refusal(COORDINATOR_55, "54") == "caller coord-55 coordinates territory 55 only"
    )
    assert territory_refusal(Caller("coord-all", "coordinator"), "54") == ""
    assert territory_refusal(Caller("operator", "operator"), "54") == ""
    assert sees_in_list(COORDINATOR_55, None, "55")
    assert not sees_in_list(COORDINATOR_55, ["ide-0007"], "54")
    assert sees_in_list(Caller("coord-all", "coordinator"), None, "54")


def test_a_care_team_members_lists_show_its_patients_only():
    assert sees_in_list(NURSE, ["gp-1", "ide-0007"], "54")
    assert not sees_in_list(NURSE, ["gp-1"], "55")
    assert not sees_in_list(NURSE, None, "55")  # no plan here: no team to be on
    assert sees_in_list(Caller("operator", "operator"), None, "55")
    assert sees_in_list(None, None, "55")  # a call from the service's own loop
