"""A direct identifier in an id field is refused at every edge, and never kept in clear.

The probes of issue 13, each through the real service: the call is refused with
INVALID_ARGUMENT naming the field and the kind of identifier, never echoing the value, and
the value is in no log of the service. A record on a Kafka input holding one is dead-lettered
with its reason, hash and place only.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from emeuse.access.v1 import access_service_pb2 as access
from emeuse.access.v1 import access_service_pb2_grpc as access_grpc
from emeuse.chronic.v1 import chronic_service_pb2 as chronic
from emeuse.chronic.v1 import chronic_service_pb2_grpc as chronic_grpc
from emeuse.chronic.v1.chronic_events_pb2 import CarePlanUpdated, ReadingRecorded
from emeuse.home.v1 import home_service_pb2 as home
from emeuse.home.v1 import home_service_pb2_grpc as home_grpc
from emeuse.home.v1.home_events_pb2 import HomeConfigured
from emeuse.partners.v1 import gateway_service_pb2 as gateway
from emeuse.partners.v1 import gateway_service_pb2_grpc as gateway_grpc
from emeuse.prevention.v1 import prevention_service_pb2 as prevention
from emeuse.prevention.v1 import prevention_service_pb2_grpc as prevention_grpc
from emeuse.prevention.v1.prevention_events_pb2 import PersonEnrolled
from emeuse.registry import READING_RECORDED, dead_letter_topic
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.events import headers_for, new_id, plan_json
from tests.integration.harness import Client, Platform
from tests.integration.identifier_scan import HOSTILE_SOURCE

STUBS: dict[str, Callable[[grpc.Channel], Any]] = {
    "chronic": chronic_grpc.ChronicServiceStub,
    "home": home_grpc.HomeServiceStub,
    "access": access_grpc.AccessServiceStub,
    "prevention": prevention_grpc.PreventionServiceStub,
    "gateway": gateway_grpc.PartnerGatewayServiceStub,
}


def care_plan(**changes: Any) -> CarePlanUpdated:
    # A copy: plan_json's care team is the module-level one other tests use.
    data = copy.deepcopy(plan_json(random_pseudonym(), new_id("cp"), "DIABETES"))
    data["thresholds"] = [{"loinc_code": "2339-0", "unit": "mg/dL", "low": 70, "high": 250}]
    for name, value in changes.items():
        if name == "member_id":
            data["care_team"][0]["member_id"] = value
        else:
            data[name] = value
    return json_format.ParseDict(data, CarePlanUpdated())


def enrol_patient(**changes: Any) -> chronic.EnrollPatientRequest:
    return chronic.EnrollPatientRequest(
        care_plan=care_plan(**changes), territory="55", experiment_id="exp-telesurv"
    )


def a_reading(**changes: Any) -> chronic.RecordReadingRequest:
    reading = ReadingRecorded(
        reading_id=new_id("r"),
        patient_pseudonym=random_pseudonym(),
        loinc_code="2339-0",
        value=100,
        unit="mg/dL",
        device_id="gf-meter-0007",
    )
    reading.measured_at.GetCurrentTime()
    for name, value in changes.items():
        setattr(reading, name, value)
    return chronic.RecordReadingRequest(reading=reading, territory="55", experiment_id="exp-x")


def fhir_with_ins(nir: str) -> chronic.IngestFhirObservationRequest:
    observation = {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": nir}],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": f"Patient/{random_pseudonym()}"},
        "effectiveDateTime": "2026-11-28T07:15:00+01:00",
        "valueQuantity": {"value": 1.1, "system": "http://unitsofmeasure.org", "code": "g/L"},
    }
    return chronic.IngestFhirObservationRequest(
        fhir_json=json.dumps(observation), territory="55", experiment_id="exp-x"
    )


def enrol_home(contact_id: str) -> home.EnrollHomeRequest:
    configured = json_format.ParseDict(
        {
            "resident_pseudonym": random_pseudonym(),
            "gir_level": 4,
            "devices": [{"device_id": "fall-01", "kind": "DEVICE_KIND_FALL_DETECTOR"}],
            "contacts": [
                {
                    "contact_id": contact_id,
                    "role": "CONTACT_ROLE_FAMILY_CAREGIVER",
                    "acknowledge_within": "600s",
                }
            ],
            "device_provider": {
                "contact_id": "provider-55",
                "role": "CONTACT_ROLE_DEVICE_PROVIDER",
                "acknowledge_within": "3600s",
            },
        },
        HomeConfigured(),
    )
    return home.EnrollHomeRequest(home=configured, territory="55", experiment_id="exp-domicile")


def consultation(requester_id: str) -> access.RequestConsultationRequest:
    request = access.RequestConsultationRequest(experiment_id="exp-x")
    request.request.request_id = new_id("req")
    request.request.patient_pseudonym = random_pseudonym()
    request.request.requester_id = requester_id
    request.request.reason_code = "follow-up"
    return request


NIR = "185057800608491"
# (service, method, request, field named, kind named, the identifying value)
PROBES: list[tuple[str, str, Message, str, str, str]] = [
    (
        "chronic",
        "EnrollPatient",
        enrol_patient(member_id="Jean Dupont"),
        "member_id",
        "name",
        "Jean Dupont",
    ),
    (
        "chronic",
        "EnrollPatient",
        enrol_patient(member_id="jean.dupont@example.fr"),
        "member_id",
        "e-mail",
        "jean.dupont@example.fr",
    ),
    (
        "chronic",
        "EnrollPatient",
        enrol_patient(member_id="+33 6 12 34 56 78"),
        "member_id",
        "phone",
        "+33 6 12 34 56 78",
    ),
    (
        "chronic",
        "UpdateCarePlan",
        chronic.UpdateCarePlanRequest(
            care_plan=care_plan(care_plan_id="12 rue des Lilas 55100 Verdun"),
            territory="55",
            experiment_id="exp-x",
        ),
        "care_plan_id",
        "postal address",
        "12 rue des Lilas",
    ),
    ("chronic", "RecordReading", a_reading(reading_id=NIR), "reading_id", "NIR", NIR),
    (
        "chronic",
        "RecordReading",
        a_reading(device_id="jean.dupont@example.fr"),
        "device_id",
        "e-mail",
        "jean.dupont@example.fr",
    ),
    (
        "chronic",
        "RecordReading",
        a_reading(patient_pseudonym="1 85 05 78 006 084 91"),
        "patient_pseudonym",
        "NIR",
        "006 084",
    ),
    ("chronic", "IngestFhirObservation", fhir_with_ins(NIR), "identifier", "INS", NIR),
    (
        "chronic",
        "AcknowledgeAlert",
        chronic.AcknowledgeAlertRequest(alert_id=new_id("a"), member_id="06.12.34.56.78"),
        "member_id",
        "phone",
        "06.12.34.56.78",
    ),
    ("home", "EnrollHome", enrol_home("0612345678"), "contact_id", "phone", "0612345678"),
    (
        "home",
        "PlanVisit",
        home.PlanVisitRequest(
            resident_pseudonym=random_pseudonym(),
            visit_id=new_id("v"),
            aide_id="Marie-Claire Martin",
        ),
        "aide_id",
        "name",
        "Marie-Claire Martin",
    ),
    (
        "access",
        "RequestConsultation",
        consultation("dr.martin@cabinet-verdun.fr"),
        "requester_id",
        "e-mail",
        "dr.martin@cabinet-verdun.fr",
    ),
    (
        "prevention",
        "EnrollPerson",
        prevention.EnrollPersonRequest(
            person=PersonEnrolled(person_pseudonym="Jean Dupont"), experiment_id="exp-x"
        ),
        "person_pseudonym",
        "name",
        "Jean Dupont",
    ),
    (
        "gateway",
        "RecordConsent",
        gateway.RecordConsentRequest(
            patient_pseudonym=NIR,
            partner_id="glucoflow",
            purpose="care.monitoring",
            granted=True,
            territory="55",
            experiment_id="exp-x",
        ),
        "patient_pseudonym",
        "NIR",
        NIR,
    ),
]


@pytest.mark.parametrize(
    ("service", "method", "request_", "field", "kind", "value"),
    PROBES,
    ids=[f"{p[0]}.{p[1]}.{p[3]}={p[4]}" for p in PROBES],
)
def test_an_identifier_in_an_id_field_is_refused_naming_field_and_kind(
    platform: Platform,
    service: str,
    method: str,
    request_: Message,
    field: str,
    kind: str,
    value: str,
) -> None:
    client = Client(platform.services[service].grpc_target, STUBS[service], platform.auth)
    with pytest.raises(grpc.RpcError) as refused:
        getattr(client, method)(request_)
    details = refused.value.details() or ""
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, details
    assert f"{field} " in details and "direct identifier" in details, details
    assert kind in details, details
    assert value not in details
    assert value not in platform.services[service].log_path.read_text(errors="replace")


def test_the_fourteen_probes_of_the_issue_are_all_here() -> None:
    assert len(PROBES) == 14


def test_a_kafka_input_named_after_a_person_is_dead_lettered_without_the_name(
    platform: Platform, bus: Any
) -> None:
    name = "Jean Dupont"
    reading = a_reading(patient_pseudonym=name).reading
    headers = [
        (key, name.encode() if key == "ce_subject" else value)
        for key, value in headers_for(READING_RECORDED, random_pseudonym())
        if key != "ce_source"
    ] + [("ce_source", HOSTILE_SOURCE)]
    value = reading.SerializeToString()
    partition, offset = bus.send(READING_RECORDED.name, name.encode(), value, headers)

    [letter] = bus.wait_for(
        dead_letter_topic("chronic").name,
        lambda r: (
            (r["event"]["source_partition"], int(r["event"]["source_offset"]))
            == (partition, offset)
            and r["event"]["source_topic"] == READING_RECORDED.name
        ),
    )
    event = letter["event"]
    assert event["cause"] == "DEAD_LETTER_CAUSE_IDENTIFYING_CONTENT"
    assert event["reason"].startswith("ce_subject holds a direct identifier (name-shaped value)")
    assert event["original_withheld"] is True
    digest = base64.b64encode(hashlib.sha256(value).digest()).decode()
    assert event["original_value_sha256"] == digest
    assert event["original_key"] == event["original_value"] == ""
    assert event["original_headers"] == {}
    assert name not in json.dumps(letter)
    assert name not in platform.services["chronic"].log_path.read_text(errors="replace")
