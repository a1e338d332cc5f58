"""The offline manifest check of `make lint` (scripts/validate_manifests.py) finds faults."""

import importlib.util
from pathlib import Path

import yaml

from emeuse.deploy.render import OUTPUT

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "validate_manifests.py"
spec = importlib.util.spec_from_file_location("validate_manifests", SCRIPT)
assert spec and spec.loader
validate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validate)


def statefulset() -> dict:
    docs = yaml.safe_load_all((OUTPUT / "base" / "chronic.yaml").read_text())
    return next(doc for doc in docs if doc["kind"] == "StatefulSet")


def test_the_rendered_statefulset_is_valid():
    assert validate.check([statefulset()], "chronic.yaml", set()) == []


def test_an_unknown_field_or_a_wrong_type_is_a_fault():
    misspelt = statefulset()
    misspelt["spec"]["replica"] = 2
    wrong_type = statefulset()
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "grpc"
    faults = validate.check([misspelt, wrong_type], "chronic.yaml", set())
    assert len(faults) == 2
    assert all(fault.startswith("chronic.yaml: StatefulSet/emeuse-chronic") for fault in faults)


def test_a_custom_kind_without_a_pinned_schema_is_reported_unchecked():
    unchecked: set[str] = set()
    topic = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validate.check([topic], "x.yaml", unchecked) == []
    assert unchecked == {"example.org/v1 Widget"}
