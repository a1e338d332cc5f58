"""Bad input and bad credentials against the real chronic service: each gets a documented
status with a clean message, is counted in emeuse_grpc_requests_total, and leaves no
payload in the service's log. (The issue's probes: a 2 MB reading_id, 3 MB of '[', a 3 MB
FHIR Bundle of 8,178 Observations.)"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import grpc
import pytest
from google.protobuf.message_factory import GetMessageClass

from emeuse.access.v1 import access_service_pb2
from emeuse.chronic.v1 import chronic_service_pb2 as api
from emeuse.chronic.v1 import chronic_service_pb2_grpc as api_grpc
from emeuse.coordination.v1 import coordination_service_pb2
from emeuse.evaluation.v1 import evaluation_service_pb2
from emeuse.home.v1 import home_service_pb2
from emeuse.partners.v1 import gateway_service_pb2
from emeuse.prevention.v1 import prevention_service_pb2
from emeuse.runtime.auth import bearer
from emeuse.runtime.pseudonym import random_pseudonym
from tests.integration.harness import Platform, metric

SERVICE = "/emeuse.chronic.v1.ChronicService/"
# Distinctive, so the log can be searched for it.
PAYLOAD_MARK = "Qz9payloadQz9"


def observation(patient: str, n: int) -> dict[str, Any]:
    return {
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "identifier": [{"system": "urn:lab:probe", "value": f"{PAYLOAD_MARK}-{n}"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "6301-6"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": "2026-11-28T09:00:00+01:00",
            "valueQuantity": {"value": 2.5, "system": "http://unitsofmeasure.org", "code": "{INR}"},
        }
    }


def bundle(entries: int) -> str:
    patient = random_pseudonym()
    return json.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [observation(patient, n) for n in range(entries)],
        }
    )


def refusal(platform: Platform, method: str, request: Any, metadata: Any = None) -> grpc.RpcError:
    with grpc.insecure_channel(platform.services["chronic"].grpc_target) as channel:
        stub = api_grpc.ChronicServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            getattr(stub, method)(
                request, timeout=20, metadata=platform.auth if metadata is None else metadata
            )
    return refused.value


def counted(platform: Platform, method: str, code: str, caller: str) -> float:
    text = platform.services["chronic"].metrics()
    return metric(
        text, "emeuse_grpc_requests_total", method=SERVICE + method, code=code, caller=caller
    )


def counted_up_to(
    platform: Platform, method: str, code: str, caller: str, expected: float
) -> float:
    """The count once it reaches `expected` or after 5 s: a call is counted just after its
    status is sent, so the caller can read /metrics first."""
    deadline = time.monotonic() + 5
    while (found := counted(platform, method, code, caller)) < expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return found


def reading_request(reading_id: str) -> api.RecordReadingRequest:
    request = api.RecordReadingRequest(territory="55", experiment_id="exp-1")
    request.reading.reading_id = reading_id
    request.reading.patient_pseudonym = random_pseudonym()
    request.reading.loinc_code, request.reading.value, request.reading.unit = "6301-6", 2.5, "{INR}"
    request.reading.measured_at.GetCurrentTime()
    return request


def fhir_request(text: str) -> api.IngestFhirObservationRequest:
    return api.IngestFhirObservationRequest(fhir_json=text, territory="55", experiment_id="exp-1")


# (method, request, status, the whole message as a pattern) for each bad input.
BAD_INPUTS = [
    pytest.param(
        "RecordReading",
        lambda: reading_request(PAYLOAD_MARK * 153_847),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"reading\.reading_id is 2000011 characters long; at most 128",
        id="2 MB reading_id",
    ),
    pytest.param(
        "IngestFhirObservation",
        lambda: fhir_request("[" * 3_000_000),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        r"the request is 3000\d\d\d bytes; at most 2097152",
        id="3 MB of [",
    ),
    pytest.param(
        "IngestFhirObservation",
        lambda: fhir_request("[" * 1_000_000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "FHIR: JSON nested too deeply to be a FHIR resource",
        id="1 MB of [",
    ),
    pytest.param(
        "IngestFhirObservation",
        lambda: fhir_request(bundle(8178)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        r"the request is 349\d{4} bytes; at most 2097152",
        id="3 MB Bundle of 8,178 Observations",
    ),
    pytest.param(
        "IngestFhirObservation",
        lambda: fhir_request(bundle(501)),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"FHIR: Bundle has 501 entries; at most 500",
        id="Bundle of 501 Observations",
    ),
]


@pytest.mark.parametrize("method, make_request, code, message", BAD_INPUTS)
def test_bad_input_gets_a_documented_status_and_a_clean_message(
    platform, method, make_request, code, message
):
    before = counted(platform, method, code.name, "operator")
    refused = refusal(platform, method, make_request())
    assert refused.code() == code
    assert re.fullmatch(message, refused.details()), refused.details()
    assert "class" not in refused.details() and "Error" not in refused.details()
    assert counted_up_to(platform, method, code.name, "operator", before + 1) == before + 1
    assert PAYLOAD_MARK not in platform.services["chronic"].log_path.read_text(errors="replace")


def test_every_refused_credential_is_counted_without_a_caller(platform):
    method = "GetPatientSummary"
    request = api.GetPatientSummaryRequest(patient_pseudonym=random_pseudonym())
    before = counted(platform, method, "UNAUTHENTICATED", "unknown")
    wrong = bearer("Qz9" + "w" * 40)
    for metadata in [(), (("authorization", "Basic Zm9vOmJhcg=="),), wrong] * 4:
        refused = refusal(platform, method, request, metadata=metadata)
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert counted_up_to(platform, method, "UNAUTHENTICATED", "unknown", before + 12) == before + 12
    log = platform.services["chronic"].log_path.read_text(errors="replace")
    assert "w" * 40 not in log and "Zm9vOmJhcg" not in log


API = {
    "prevention": prevention_service_pb2,
    "chronic": api,
    "access": access_service_pb2,
    "home": home_service_pb2,
    "gateway": gateway_service_pb2,
    "evaluation": evaluation_service_pb2,
    "coordination": coordination_service_pb2,
}


def test_no_method_of_any_service_answers_an_empty_request_with_an_undocumented_status(
    platform,
):
    answers = {}
    for service, module in API.items():
        [described] = module.DESCRIPTOR.services_by_name.values()
        with grpc.insecure_channel(platform.services[service].grpc_target) as channel:
            for method in described.methods:
                call = channel.unary_unary(
                    f"/{described.full_name}/{method.name}",
                    request_serializer=lambda message: message.SerializeToString(),
                    response_deserializer=lambda raw: raw,
                )
                try:
                    call(GetMessageClass(method.input_type)(), timeout=20, metadata=platform.auth)
                except grpc.RpcError as error:
                    answers[f"{service} {method.name}"] = (error.code(), error.details())
    undocumented = {
        name: answer
        for name, answer in answers.items()
        if answer[0] in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
    }
    assert not undocumented
