"""`emeuse deploy render`: the committed manifests are a render of the registries, and they
follow the registries when those change."""

import importlib.util
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from emeuse import registry
from emeuse.cli.main import main
from emeuse.cli.partner_admin import partner_acls
from emeuse.deploy.render import CLUSTER_FILE, OUTPUT, PARTNERS_FILE, read_partners
from emeuse.deploy.strimzi import PLATFORM_USERS
from emeuse.runtime import settings
from services.access import config as access_config
from services.prevention import config as prevention_config


def run(capsys, *argv):
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kafka_topics(output: Path) -> dict[str, dict]:
    return {
        doc["spec"]["topicName"]: doc["spec"]
        for doc in documents(output / "base" / "topics.yaml")
        if doc["kind"] == "KafkaTopic"
    }


def certificates_in(output: Path) -> dict[str, dict]:
    return {
        doc["metadata"]["name"]: doc["spec"]
        for doc in documents(output / "base" / "certificates.yaml")
        if doc["kind"] == "Certificate"
    }


def render_with(capsys, output: Path, partners: str = "", cluster: str = "") -> None:
    """Render into `output` from partners and cluster files holding these texts."""
    partners_file, cluster_file = output.parent / "partners.toml", output.parent / "cluster.toml"
    partners_file.write_text(partners)
    cluster_file.write_text(cluster)
    status, _, err = run(
        capsys,
        "deploy",
        "render",
        "--output",
        str(output),
        "--partners",
        str(partners_file),
        "--cluster",
        str(cluster_file),
    )
    assert status == 0, err


def every_manifest(output: Path) -> list[dict]:
    return [doc for path in sorted((output / "base").glob("*.yaml")) for doc in documents(path)]


def test_the_committed_manifests_are_a_fresh_render(capsys):
    status, out, err = run(capsys, "deploy", "render", "--check")
    assert status == 0, err
    assert "up to date" in out


def test_every_registry_topic_is_a_kafka_topic_as_the_registry_says():
    topics = kafka_topics(OUTPUT)
    for spec in registry.TOPICS:
        assert topics[spec.name]["partitions"] == spec.partitions
        assert topics[spec.name]["config"] == spec.kafka_config()


def test_kafka_topics_follow_a_changed_registry(capsys, monkeypatch, tmp_path):
    dropped, resized, *kept = registry.TOPICS
    added = replace(kept[0], name="emeuse.chronic.reading-annotated.v1", retention_days=7)
    changed = (replace(resized, partitions=12), *kept, added)
    monkeypatch.setattr(registry, "TOPICS", changed)

    status, _, err = run(capsys, "deploy", "render", "--output", str(tmp_path))
    assert status == 0, err
    topics = kafka_topics(tmp_path)
    assert dropped.name not in topics
    assert topics[resized.name]["partitions"] == 12
    assert topics[added.name]["config"] == {"cleanup.policy": "delete", "retention.ms": "604800000"}
    registry_names = {spec.name for spec in changed}
    assert registry_names <= set(topics)

    # The committed files no longer match: the check names the file that drifted.
    status, _, err = run(capsys, "deploy", "render", "--check")
    assert status == 1
    assert "base/topics.yaml" in err and "emeuse deploy render" in err


def test_a_render_removes_files_it_no_longer_makes(capsys, tmp_path):
    stale = tmp_path / "base" / "retired.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: ConfigMap\n")
    status, _, err = run(capsys, "deploy", "render", "--check", "--output", str(tmp_path))
    assert status == 1 and "base/retired.yaml" in err
    assert run(capsys, "deploy", "render", "--output", str(tmp_path))[0] == 0
    assert not stale.exists()


def test_each_partner_gets_a_user_with_the_acls_partner_add_grants(capsys, tmp_path):
    partners_file = tmp_path / "partners.toml"
    partners_file.write_text('[[partner]]\nid = "acme-labs"\n\n[[partner]]\nid = "glucoflow"\n')
    output = tmp_path / "k8s"
    status, _, err = run(
        capsys, "deploy", "render", "--output", str(output), "--partners", str(partners_file)
    )
    assert status == 0, err
    users = {doc["metadata"]["name"]: doc["spec"] for doc in documents(output / "base/users.yaml")}
    assert set(users) == {"partner-acme-labs", "partner-glucoflow", *PLATFORM_USERS}
    granted = {
        (rule["resource"]["type"], rule["resource"]["name"], operation.upper())
        for rule in users["partner-acme-labs"]["authorization"]["acls"]
        for operation in rule["operations"]
    }
    expected = {
        (
            acl.resource_pattern.resource_type.name.lower(),
            acl.resource_pattern.resource_name,
            acl.operation.name,
        )
        for acl in partner_acls("acme-labs")
    }
    assert granted == expected
    password = users["partner-acme-labs"]["authentication"]["password"]
    assert password == {
        "valueFrom": {"secretKeyRef": {"name": "emeuse-partner-acme-labs-scram", "key": "password"}}
    }
    assert "emeuse-partner.acme-labs.feed" in kafka_topics(output)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[partner]]\nid = "Bad_Id"\n', "partner id 'Bad_Id'"),
        ('[[partner]]\nname = "x"\n', 'id = "..."'),
        ('[[partner]]\nid = "acme"\n[[partner]]\nid = "acme"\n', "listed twice"),
        ("[[partner\n", "partners.toml"),
    ],
)
def test_a_bad_partners_file_is_one_clear_error(capsys, tmp_path, text, fragment):
    partners_file = tmp_path / "partners.toml"
    partners_file.write_text(text)
    status, _out, err = run(
        capsys,
        "deploy",
        "render",
        "--output",
        str(tmp_path / "k8s"),
        "--partners",
        str(partners_file),
    )
    assert status == 1
    assert err.startswith("emeuse: error: ") and fragment in err
    assert not (tmp_path / "k8s").exists()


def test_the_committed_partners_all_have_a_user():
    users = {doc["metadata"]["name"] for doc in documents(OUTPUT / "base/users.yaml")}
    partner_users = {f"partner-{partner_id}" for partner_id in read_partners(PARTNERS_FILE)}
    assert users == partner_users | set(PLATFORM_USERS)


def test_each_service_logs_in_to_kafka_as_its_own_scram_user_over_tls():
    (cluster,) = [d for d in documents(OUTPUT / "base/kafka.yaml") if d["kind"] == "Kafka"]
    listener = next(
        item for item in cluster["spec"]["kafka"]["listeners"] if item["name"] == "platform"
    )
    assert listener["tls"] and listener["authentication"] == {"type": "scram-sha-512"}
    config = next(iter(documents(OUTPUT / "base/platform.yaml")))["data"]
    assert config["EMEUSE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    for service in registry.SERVICES:
        (sts,) = [
            d for d in documents(OUTPUT / f"base/{service}.yaml") if d["kind"] == "StatefulSet"
        ]
        pod = sts["spec"]["template"]["spec"]
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        env = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
        # The Secret Strimzi's User Operator makes for the service's KafkaUser.
        assert secrets["kafka-user"] == f"emeuse-{service}" in PLATFORM_USERS
        password = env[f"EMEUSE_{service.upper()}_KAFKA_PASSWORD_FILE"]
        assert password == f"{mounts['kafka-user']}/password"
        assert config["EMEUSE_KAFKA_CA_FILE"] == f"{mounts['kafka-ca']}/ca.crt"


def test_instances_keep_their_identity_and_state_across_restarts():
    for service in registry.SERVICES:
        (sts,) = [
            d for d in documents(OUTPUT / f"base/{service}.yaml") if d["kind"] == "StatefulSet"
        ]
        container = sts["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item for item in container["env"]}
        assert env[f"EMEUSE_{service.upper()}_INSTANCE_ID"]["value"] == "$(POD_NAME)"
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        data = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["data"]
        assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
        config = next(iter(documents(OUTPUT / "base/platform.yaml")))["data"]
        assert config["EMEUSE_DATA_DIR"] == data
        assert (
            container["readinessProbe"]["grpc"]["port"] == settings.DEFAULT_PORTS[service][0] + 1000
        )


def test_each_service_serves_grpc_with_mutual_tls_on_its_cert_manager_certificate():
    config = next(iter(documents(OUTPUT / "base/platform.yaml")))["data"]
    assert config["EMEUSE_GRPC_TLS"] == "mtls"
    issued = {
        doc["metadata"]["name"]: doc["spec"]
        for doc in documents(OUTPUT / "base/certificates.yaml")
        if doc["kind"] == "Certificate"
    }
    for service in registry.SERVICES:
        docs = documents(OUTPUT / f"base/{service}.yaml")
        (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
        pod = sts["spec"]["template"]["spec"]
        container = pod["containers"][0]
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        env = {item["name"]: item.get("value") for item in container["env"]}
        # The Secret cert-manager writes for the service's Certificate, mounted whole (no
        # subPath), so the kubelet's update of a renewed certificate reaches the files.
        spec = issued[f"emeuse-{service}"]
        assert secrets["tls"] == spec["secretName"]
        assert not any("subPath" in m for m in container["volumeMounts"])
        prefix = f"EMEUSE_{service.upper()}"
        assert env[f"{prefix}_TLS_CERT_FILE"] == f"{mounts['tls']}/tls.crt"
        assert env[f"{prefix}_TLS_KEY_FILE"] == f"{mounts['tls']}/tls.key"
        assert config["EMEUSE_TLS_CA_FILE"] == f"{mounts['tls']}/ca.crt"
        assert {"server auth", "client auth"} <= set(spec["usages"])
        # Kubelet's gRPC probes speak no TLS: they ask the plaintext health-only port,
        # which no Service exposes.
        health = int(env[f"{prefix}_HEALTH_PORT"])
        assert container["startupProbe"]["grpc"]["port"] == health
        assert container["readinessProbe"]["grpc"]["port"] == health
        for svc in (d for d in docs if d["kind"] == "Service"):
            assert health not in {port["port"] for port in svc["spec"]["ports"]}


def test_every_variable_the_manifests_set_is_a_declared_setting():
    declared = {
        setting.variable(service)
        for service in registry.SERVICES
        for setting in (*settings.SETTINGS, *access_config.SETTINGS, *prevention_config.SETTINGS)
    }
    for doc in every_manifest(OUTPUT):
        names = set(doc.get("data", {})) if doc["kind"] == "ConfigMap" else set()
        if doc["kind"] == "StatefulSet":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            names = {item["name"] for item in container["env"]}
        assert {n for n in names if n.startswith("EMEUSE_")} <= declared, doc["metadata"]["name"]


def test_no_secret_value_is_in_the_manifests():
    for doc in every_manifest(OUTPUT):
        assert doc["kind"] != "Secret"
    text = "".join(p.read_text() for p in OUTPUT.rglob("*.yaml"))
    assert "password: " not in text.replace("password:\n", "")
    assert "token:" not in text


def test_an_output_that_cannot_be_written_is_one_clear_error(capsys, tmp_path):
    blocker = tmp_path / "k8s"
    blocker.write_text("a file where the folder should be")
    status, _, err = run(capsys, "deploy", "render", "--output", str(blocker))
    assert status == 1
    assert err.startswith("emeuse: error: cannot write") and "Traceback" not in err


ACME_CALLS_GRPC = '[[partner]]\nid = "acme-labs"\ngrpc = true\n\n[[partner]]\nid = "glucoflow"\n'


def test_a_partner_calling_grpc_gets_a_client_certificate_and_loses_it_when_removed(
    capsys, tmp_path
):
    output = tmp_path / "k8s"
    render_with(capsys, output, partners=ACME_CALLS_GRPC)
    issued = certificates_in(output)
    acme = issued["emeuse-partner-acme-labs"]
    assert acme["secretName"] == "emeuse-partner-acme-labs-tls"
    assert acme["issuerRef"] == {"name": "emeuse-ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert acme["usages"] == ["digital signature", "key encipherment", "client auth"]
    # glucoflow publishes on Kafka only: a Kafka user, no certificate.
    assert not any("glucoflow" in name for name in issued)
    assert {"partner-acme-labs", "partner-glucoflow"} <= {
        doc["metadata"]["name"] for doc in documents(output / "base/users.yaml")
    }

    # The committed files have no such partner: the check names the file that drifted.
    partners_file = tmp_path / "partners.toml"
    status, _, err = run(capsys, "deploy", "render", "--check", "--partners", str(partners_file))
    assert status == 1 and "base/certificates.yaml" in err

    render_with(capsys, output, partners='[[partner]]\nid = "glucoflow"\n')
    assert not any(name.startswith("emeuse-partner-") for name in certificates_in(output))
    assert set(certificates_in(output)) == set(certificates_in(OUTPUT))


EXTERNAL = (
    "[production.external_names]\n"
    'chronic = ["chronic.grpc.example.org"]\n'
    'gateway = ["gateway.grpc.example.org", "partners.example.org"]\n'
)


def kustomize(overlay: Path) -> list[dict]:
    built = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def validator():
    script = Path(__file__).resolve().parents[3] / "scripts" / "validate_manifests.py"
    spec = importlib.util.spec_from_file_location("validate_manifests", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl absent: overlays not built")
def test_external_names_reach_the_certificates_and_a_load_balancer_in_production_only(
    capsys, tmp_path
):
    output = tmp_path / "k8s"
    render_with(capsys, output, partners=ACME_CALLS_GRPC, cluster=EXTERNAL)
    production = kustomize(output / "overlays" / "production")
    names = {
        doc["metadata"]["name"]: doc["spec"].get("dnsNames", [])
        for doc in production
        if doc["kind"] == "Certificate"
    }
    assert names["emeuse-chronic"][-1] == "chronic.grpc.example.org"
    assert names["emeuse-gateway"][-2:] == ["gateway.grpc.example.org", "partners.example.org"]
    assert not any("example.org" in name for name in names["emeuse-access"])
    balancers = {
        doc["metadata"]["name"]: doc
        for doc in production
        if doc["kind"] == "Service" and doc["spec"].get("type") == "LoadBalancer"
    }
    assert set(balancers) == {"emeuse-chronic-external", "emeuse-gateway-external"}
    chronic = balancers["emeuse-chronic-external"]
    # Its gRPC port alone, to chronic's pods; TLS is not terminated on the way.
    assert chronic["spec"]["ports"] == [
        {"name": "grpc", "port": 50052, "targetPort": "grpc", "protocol": "TCP"}
    ]
    assert chronic["spec"]["selector"] == {"app.kubernetes.io/name": "emeuse-chronic"}
    # The service's ServiceMonitor does not pick it up as a scrape target.
    (monitor,) = [
        d
        for d in production
        if d["kind"] == "ServiceMonitor" and d["metadata"]["name"] == "emeuse-chronic"
    ]
    selected = monitor["spec"]["selector"]["matchLabels"].items()
    assert not selected <= chronic["metadata"]["labels"].items()

    local = kustomize(output / "overlays" / "local")
    assert not [d for d in local if d["kind"] == "Service" and d["spec"].get("type")]
    assert not any(
        "example.org" in name
        for doc in local
        if doc["kind"] == "Certificate"
        for name in doc["spec"].get("dnsNames", [])
    )
    # Valid for Kubernetes and for cert-manager's CRDs (the latter when npm ci has run).
    assert validator().check(production, "overlay production", set()) == []


def test_the_committed_cluster_file_opens_nothing_to_outside_callers():
    assert CLUSTER_FILE.is_file()
    assert not (OUTPUT / "overlays" / "production" / "external.yaml").exists()
    for doc in every_manifest(OUTPUT):
        assert doc["kind"] != "Service" or "type" not in doc["spec"]


@pytest.mark.parametrize(
    ("cluster", "fragment"),
    [
        ('[production.external_names]\nbilling = ["b.example.org"]\n', "unknown service billing"),
        ('[production.external_names]\nchronic = "c.example.org"\n', "must be a list of names"),
        ('[production.external_names]\nchronic = ["Chronic.Example.org"]\n', "fully qualified"),
        ('[production.external_names]\nchronic = ["chronic"]\n', "fully qualified"),
        (
            '[production.external_names]\nchronic = ["a.example.org"]\nhome = ["a.example.org"]\n',
            "listed for chronic and home",
        ),
        ('[production]\nexternal_name = ["a.example.org"]\n', "unknown setting external_name"),
        ("[staging]\n", "unknown table staging"),
        ("[production\n", "cluster.toml"),
    ],
)
def test_a_bad_cluster_file_is_one_clear_error(capsys, tmp_path, cluster, fragment):
    cluster_file = tmp_path / "cluster.toml"
    cluster_file.write_text(cluster)
    output = tmp_path / "k8s"
    status, _out, err = run(
        capsys, "deploy", "render", "--output", str(output), "--cluster", str(cluster_file)
    )
    assert status == 1
    assert err.startswith("emeuse: error: ") and fragment in err, err
    assert not output.exists()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[partner]]\nid = "acme"\ngrpc = "yes"\n', "grpc must be true or false"),
        ('[[partner]]\nid = "acme"\ngprc = true\n', "unknown key gprc"),
    ],
)
def test_a_bad_grpc_flag_is_one_clear_error(capsys, tmp_path, text, fragment):
    partners_file = tmp_path / "partners.toml"
    partners_file.write_text(text)
    status, _out, err = run(
        capsys,
        "deploy",
        "render",
        "--output",
        str(tmp_path / "k8s"),
        "--partners",
        str(partners_file),
    )
    assert status == 1
    assert err.startswith("emeuse: error: ") and fragment in err, err
