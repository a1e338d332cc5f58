"""The offline manifest check of `make lint` (scripts/validate_manifests.py) finds faults."""

import importlib.util
import shutil
from pathlib import Path

import pytest
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


# The Strimzi and ServiceMonitor checks run the validators `npm ci` installs (package.json).
needs_crd_validators = pytest.mark.skipif(
    shutil.which("node") is None or not validate.CRD_PACKAGES.is_dir(),
    reason="node or node_modules/@kubernetes-models absent: run `npm ci` (make install)",
)


def rendered(file: str, kind: str) -> list[dict]:
    docs = yaml.safe_load_all((OUTPUT / "base" / file).read_text())
    return [doc for doc in docs if doc and doc["kind"] == kind]


@needs_crd_validators
def test_every_rendered_manifest_is_checked_and_valid(capsys):
    assert validate.main() == 0
    out = capsys.readouterr().out
    assert "not checked" not in out
    assert "custom kinds for their pinned CRD schemas" in out


@needs_crd_validators
def test_a_kafka_topic_with_partitions_in_words_is_refused():
    topic = rendered("topics.yaml", "KafkaTopic")[0]
    topic["spec"]["partitions"] = "six"
    unchecked: set[str] = set()
    faults = validate.check([topic], "topics.yaml", unchecked)
    name = topic["metadata"]["name"]
    assert faults == [f"topics.yaml: KafkaTopic/{name}: must be integer at /spec/partitions"]
    assert unchecked == set()


@needs_crd_validators
def test_a_kafka_user_acl_with_an_unknown_operation_is_refused():
    user = rendered("users.yaml", "KafkaUser")[0]
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Produce"]
    faults = validate.check([user], "users.yaml", set())
    assert len(faults) == 1
    assert faults[0].startswith(f"users.yaml: KafkaUser/{user['metadata']['name']}: ")
    assert "allowed values" in faults[0]
    assert faults[0].endswith("at /spec/authorization/acls/0/operations/0")


@needs_crd_validators
def test_a_kafka_without_its_kafka_section_and_a_service_monitor_with_a_numbered_port_are_refused():
    kafka = rendered("kafka.yaml", "Kafka")[0]
    del kafka["spec"]["kafka"]
    monitor = rendered("chronic.yaml", "ServiceMonitor")[0]
    monitor["spec"]["endpoints"][0]["port"] = 9100
    faults = validate.check([kafka, monitor], "x.yaml", set())
    assert [fault.split(": ")[1] for fault in faults] == [
        "Kafka/emeuse",
        "ServiceMonitor/emeuse-chronic",
    ]
    assert faults[1].endswith("must be string at /spec/endpoints/0/port")


def test_without_the_npm_packages_the_operator_kinds_are_reported_unchecked(monkeypatch, tmp_path):
    monkeypatch.setattr(validate, "CRD_PACKAGES", tmp_path / "absent")
    unchecked: set[str] = set()
    assert validate.check(rendered("topics.yaml", "KafkaTopic")[:1], "t.yaml", unchecked) == []
    assert unchecked == {"kafka.strimzi.io/v1beta2 KafkaTopic (node_modules absent: npm ci)"}


@needs_crd_validators
def test_a_certificate_without_its_secret_or_with_an_unknown_usage_is_refused():
    certificate = rendered("certificates.yaml", "Certificate")[-1]
    name = certificate["metadata"]["name"]
    del certificate["spec"]["secretName"]
    certificate["spec"]["usages"] = ["serverAuth"]
    unchecked: set[str] = set()
    faults = validate.check([certificate], "certificates.yaml", unchecked)
    assert unchecked == set()
    assert [fault.split(": ", 2)[1] for fault in faults] == [f"Certificate/{name}"] * 2
    assert any(f.endswith("must have required property secretName at /spec") for f in faults)
    assert any("allowed values" in f and f.endswith("at /spec/usages/0") for f in faults)


@needs_crd_validators
def test_a_ca_issuer_without_its_secret_and_names_not_in_a_list_are_refused():
    issuer = next(i for i in rendered("certificates.yaml", "Issuer") if "ca" in i["spec"])
    del issuer["spec"]["ca"]["secretName"]
    certificate = rendered("certificates.yaml", "Certificate")[-1]
    certificate["spec"]["dnsNames"] = "emeuse-chronic"
    faults = validate.check([issuer, certificate], "certificates.yaml", set())
    assert len(faults) == 2
    assert faults[0].startswith("certificates.yaml: Issuer/emeuse-ca: ")
    assert faults[0].endswith("at /spec/ca")
    assert faults[1].endswith("must be array at /spec/dnsNames")


@needs_crd_validators
def test_the_rendered_certificates_and_issuers_are_valid():
    documents = [
        *rendered("certificates.yaml", "Issuer"),
        *rendered("certificates.yaml", "Certificate"),
    ]
    unchecked: set[str] = set()
    assert validate.check(documents, "certificates.yaml", unchecked) == []
    assert unchecked == set()


@needs_crd_validators
def test_scraping_over_https_is_one_switch_and_renders_valid_resources(monkeypatch):
    from emeuse.deploy import render, workloads

    monkeypatch.setattr(workloads, "METRICS_SCHEME", "https")
    files = render.render().files
    chronic = list(yaml.safe_load_all(files["base/chronic.yaml"]))
    issued = [d for d in yaml.safe_load_all(files["base/certificates.yaml"]) if d]
    (monitor,) = [d for d in chronic if d and d["kind"] == "ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    # Prometheus checks the service's certificate for the Service's name, against the
    # namespace CA, and presents the client certificate cert-manager issues it.
    tls = endpoint["tlsConfig"]
    assert tls["serverName"] == "emeuse-chronic"
    (scraper,) = [d for d in issued if d["spec"].get("secretName") == tls["keySecret"]["name"]]
    assert "client auth" in scraper["spec"]["usages"]
    (sts,) = [d for d in chronic if d and d["kind"] == "StatefulSet"]
    probe = sts["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]
    assert probe["scheme"] == "HTTPS"
    assert validate.check([monitor, scraper, sts], "https render", set()) == []
