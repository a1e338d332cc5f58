import glob
import importlib
from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor

from emeuse.access.v1.access_events_pb2 import ConsultationRequested
from emeuse.chronic.v1.chronic_events_pb2 import AlertRaised, ReadingRecorded
from emeuse.runtime.id_rules import (
    CODE,
    ID_FIELDS,
    OPAQUE,
    PSEUDONYM,
    IdentifyingContentError,
    IdRuleError,
    check_id,
    check_ids,
)
from emeuse.runtime.pseudonym import random_pseudonym

ROOT = Path(__file__).resolve().parents[3]
ID_LIKE = ("_id", "_ids", "_pseudonym", "_by", "_code", "_codes")


def contract_string_fields():
    for path in glob.glob(str(ROOT / "libs/emeuse/*/v1/*_pb2.py")):
        module = importlib.import_module(
            str(Path(path).relative_to(ROOT / "libs").with_suffix("")).replace("/", ".")
        )
        stack = list(module.DESCRIPTOR.message_types_by_name.values())
        while stack:
            message = stack.pop()
            stack.extend(message.nested_types)
            for field in message.fields:
                if field.type == FieldDescriptor.TYPE_STRING:
                    yield message.full_name, field.name


def test_every_id_field_of_the_contract_has_a_rule():
    unruled = {
        f"{message}.{field}"
        for message, field in contract_string_fields()
        if field.endswith(ID_LIKE) and field not in ID_FIELDS
    }
    assert unruled == set()


def test_every_rule_names_a_field_of_the_contract():
    names = {field for _, field in contract_string_fields()}
    assert set(ID_FIELDS) - names == set()


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        (OPAQUE, "ide-0107"),
        (OPAQUE, "fhir:https://glucoflow.example/readings|gf-0001"),
        (OPAQUE, "emeuse/home"),
        (OPAQUE, "0b5e0b5e-4c55-8f55-e5e0-5e0000550001"),
        (CODE, "2339-0"),
        (CODE, "patient.hospitalised"),
        (PSEUDONYM, random_pseudonym()),
    ],
)
def test_the_platform_ids_keep_their_rules(rule, value):
    check_id("some_id", value, rule)


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("member_id", "Jean Dupont", "name-shaped"),
        ("member_id", "jean.dupont@example.fr", "e-mail"),
        ("care_plan_id", "12 rue des Lilas 55100 Verdun", "postal address"),
        ("reading_id", "185057800608491", "NIR"),
        ("contact_id", "0612345678", "phone"),
        ("reason_code", "Mme Dupont est absente", "name-shaped"),
        ("patient_pseudonym", "+33 6 12 34 56 78", "phone"),
        # Ids that keep the opaque charset, so only the number kinds can hide in them.
        ("reading_id", "fhir:urn:oid:1.2.250.1.213.1.4.8|x-1", "INS"),
        ("reading_id", "r-06-12-34-56-78", "phone"),
        ("device_id", "+33612345678", "phone"),
        ("device_id", "0033612345678", "phone"),
        ("reading_id", "nir:269052A01802283", "NIR"),
        ("reading_id", "nir.1.85.05.78.006.084.91", "NIR"),
    ],
)
def test_an_id_holding_a_direct_identifier_is_refused_naming_field_and_kind(field, value, kind):
    with pytest.raises(IdentifyingContentError) as refused:
        check_id(field, value, ID_FIELDS[field])
    assert refused.value.field == field
    assert kind in refused.value.kind
    assert value not in str(refused.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("device_id", "meter 7"), ("device_id", "x" * 129), ("loinc_code", "<script>")],
)
def test_an_id_breaking_its_charset_or_length_is_refused_without_echoing_it(field, value):
    with pytest.raises(IdRuleError, match=f"{field} is not a valid") as refused:
        check_id(field, value, ID_FIELDS[field])
    assert value not in str(refused.value)


def test_nested_and_repeated_id_fields_are_checked_with_their_path():
    request = ConsultationRequested(request_id="r-1", patient_pseudonym=random_pseudonym())
    request.place.place_id = "Jean Dupont"
    with pytest.raises(IdentifyingContentError, match=r"^place\.place_id holds"):
        check_ids(request)
    alert = AlertRaised(alert_id="a-1", reading_ids=["r-1", "0612345678"])
    with pytest.raises(IdentifyingContentError, match=r"^reading_ids holds .*phone"):
        check_ids(alert)


def test_a_message_of_opaque_ids_passes():
    check_ids(
        ReadingRecorded(
            reading_id="r-1",
            patient_pseudonym=random_pseudonym(),
            loinc_code="2339-0",
            device_id="gf-meter-0007",
        )
    )
