import importlib
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from emeuse.access.v1.access_service_pb2 import PublishAvailabilityRequest
from emeuse.chronic.v1.chronic_service_pb2 import (
    EnrollPatientRequest,
    IngestFhirObservationRequest,
    RecordReadingRequest,
    ReviewPointOfCareResultRequest,
)
from emeuse.prevention.v1.prevention_service_pb2 import CreateCampaignRequest
from emeuse.runtime import limits
from emeuse.runtime.limits import ID_CHARS, ITEMS, TEXT_CHARS, out_of_bounds


def test_a_request_within_every_bound_passes():
    request = RecordReadingRequest(territory="55", experiment_id="exp-1")
    request.reading.reading_id = "r" * ID_CHARS
    assert out_of_bounds(request) is None


def test_an_id_over_its_bound_is_named_with_its_path_and_size():
    request = RecordReadingRequest(territory="55")
    request.reading.reading_id = "r" * 2_000_000
    assert out_of_bounds(request) == (
        f"reading.reading_id is 2000000 characters long; at most {ID_CHARS}"
    )


def test_free_text_and_documents_have_bounds_of_their_own():
    review = ReviewPointOfCareResultRequest(rejection_reason="x" * TEXT_CHARS)
    assert out_of_bounds(review) is None
    review.rejection_reason += "x"
    assert "rejection_reason is 4097 characters long" in (out_of_bounds(review) or "")
    fhir = IngestFhirObservationRequest(fhir_json="{" + " " * 500_000 + "}")
    assert out_of_bounds(fhir) is None


def test_a_repeated_field_over_its_bound_is_named():
    request = EnrollPatientRequest()
    for n in range(ITEMS + 1):
        request.care_plan.care_team.add(member_id=f"m{n}")
    assert out_of_bounds(request) == f"care_plan.care_team has {ITEMS + 1} entries; at most {ITEMS}"


def test_an_item_of_a_repeated_field_is_named_by_its_index():
    request = EnrollPatientRequest()
    request.care_plan.care_team.add(member_id="m1")
    request.care_plan.care_team.add(member_id="m" * 129)
    assert (out_of_bounds(request) or "").startswith("care_plan.care_team[1].member_id is 129")


def test_a_month_of_slots_fits_in_one_availability():
    request = PublishAvailabilityRequest()
    for n in range(1000):
        request.availability.slots.add(slot_id=f"s{n}")
    assert out_of_bounds(request) is None
    request.availability.slots.add(slot_id="one-too-many")
    assert "availability.slots has 1001 entries" in (out_of_bounds(request) or "")


def test_map_fields_are_bounded_in_size_keys_and_values():
    request = CreateCampaignRequest()
    message = request.campaign.messages.add()
    message.parameters["first_name_initial"] = "x" * TEXT_CHARS
    assert out_of_bounds(request) is None
    message.parameters["k" * 200] = "v"
    assert "campaign.messages[0].parameters key is 200 characters" in (out_of_bounds(request) or "")


@pytest.fixture(scope="module")
def pool():
    libs = Path(__file__).resolve().parents[3] / "libs"
    for module in libs.glob("emeuse/*/v1/*_service_pb2.py"):
        importlib.import_module(".".join(module.relative_to(libs).with_suffix("").parts))
    return descriptor_pool.Default()


def test_every_named_bound_names_a_field_or_method_of_the_contract(pool):
    for name in (*limits.STRING_CHARS, *limits.REPEATED_ITEMS):
        assert pool.FindFieldByName(name)
    for path in limits.CALL_SECONDS_BY_METHOD:
        service, method = path.strip("/").split("/")
        assert method in pool.FindServiceByName(service).methods_by_name


def test_the_largest_document_fits_in_a_request():
    assert limits.DOCUMENT_CHARS < limits.MAX_REQUEST_BYTES < limits.MAX_RECEIVE_BYTES
