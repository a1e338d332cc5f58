import time
import uuid

import pytest

from emeuse.runtime.identifying import (
    ADDRESS,
    EMAIL,
    INS_OID,
    NAME,
    NIR,
    PHONE,
    identifier_kind,
    identifier_kinds,
    nir_key_is_valid,
)
from emeuse.runtime.pseudonym import random_pseudonym


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("jean.dupont@example.fr", EMAIL),
        ("contact: J.Dupont+sante@hopital-verdun.fr", EMAIL),
        ("0612345678", PHONE),
        ("06 12 34 56 78", PHONE),
        ("06.12.34.56.78", PHONE),
        ("+33 6 12 34 56 78", PHONE),
        ("+33612345678", PHONE),
        ("0033 3 29 86 00 00", PHONE),
        ("185057800608491", NIR),
        ("1 85 05 78 006 084 91", NIR),
        ("269052A01802283", NIR),
        ("fhir:urn:oid:1.2.250.1.213.1.4.8|185057800608491", INS_OID),
        ("urn:oid:1.2.250.1.213.1.4.10", INS_OID),
        ("1.2.250.1.213.1.4.11", INS_OID),
        ("12 rue des Lilas 55100 Verdun", ADDRESS),
        ("3 bis, avenue de la Gare", ADDRESS),
        ("55100 Verdun", ADDRESS),
        ("Jean Dupont", NAME),
        ("Marie-Claire Martin", NAME),
        ("Mme Dupont est absente", NAME),
        ("DUPONT Jean", NAME),
        ("Élise Lefèvre", NAME),
    ],
)
def test_a_direct_identifier_is_found_and_named(text: str, kind: str) -> None:
    assert identifier_kind(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "ide-0107",
        "aide-0107",
        "cp-1",
        "cp-diabete-2",
        "2339-0",
        "34714-6",
        "fhir:https://glucoflow.example/readings|gf-0001",
        "fhir:Observation/obs-1",
        "gf-meter-0007",
        "family-9999",
        "gp-0042",
        "samu-55",
        "cabin-55029",
        "ide-ehpad-55029",
        "slot-gp-bld-1130-0900",
        "reminder.consultation.follow_up",
        "chronic.alert.urgent",
        "exp-telesurv",
        "emeuse.chronic.reading-recorded.v1",
        "2026-12-07T00:53:13Z",
        "mg/dL",
        "inc-1234567890",
        "185057800608490",  # a NIR's shape with a wrong key
        "1.2.250.1.213.1.4.9",
        "patient.hospitalised",
    ],
)
def test_the_platform_ids_name_nobody(text: str) -> None:
    assert identifier_kind(text) is None


def test_random_uuids_and_pseudonyms_name_nobody() -> None:
    for _ in range(2000):
        assert identifier_kinds(str(uuid.uuid4())) == []
        assert identifier_kinds(uuid.uuid4().hex) == []
        assert identifier_kinds(random_pseudonym()) == []


def test_a_corsican_nir_key_reads_2a_as_19_and_2b_as_18() -> None:
    assert nir_key_is_valid("269052A018022", "83")
    assert not nir_key_is_valid("269052A018022", "84")
    number = int("1850518123456")
    assert nir_key_is_valid("18505" + "2B" + "123456", f"{97 - number % 97:02d}")


def test_every_kind_in_a_value_is_named_most_certain_first() -> None:
    kinds = identifier_kinds("Jean Dupont, 12 rue des Lilas, jean@example.fr")
    assert kinds == [EMAIL, ADDRESS, NAME]


@pytest.mark.parametrize(
    "text", ["x" * 1_000_000, "a." * 500_000, "1" * 1_000_000, "Ab " * 300_000]
)
def test_a_megabyte_is_scanned_in_linear_time(text: str) -> None:
    # A dead letter scans a record of up to 1 MB: a quadratic pattern would take hours.
    started = time.perf_counter()
    identifier_kinds(text)
    assert time.perf_counter() - started < 10
