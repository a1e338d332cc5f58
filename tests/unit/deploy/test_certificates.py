"""The cluster's certificates cover the names the services dial each other by, in each
overlay's namespace, and the names outside callers dial in production: a certificate made
as cert-manager would issue the rendered one (its names, its usages) is served under mutual
TLS and dialled by each of those names, as gRPC checks them (wildcards included); a
partner's rendered client certificate is let in and cannot serve. In process, with openssl;
no cluster."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from emeuse.deploy.render import LOCAL_NAMESPACE, OUTPUT, PRODUCTION_NAMESPACE, render
from emeuse.deploy.workloads import PEERS
from emeuse.runtime.grpc_tls import bind, open_aio_channel
from emeuse.runtime.security import GrpcTls


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def certificate_spec(name: str) -> dict:
    (found,) = [
        doc["spec"]
        for doc in documents(OUTPUT / "base" / "certificates.yaml")
        if doc["kind"] == "Certificate" and doc["metadata"]["name"] == name
    ]
    return found


def dns_names_in(namespace: str, name: str) -> list[str]:
    """The names the rendered certificate carries once the overlay of `namespace` applies."""
    if namespace == PRODUCTION_NAMESPACE:
        return certificate_spec(name)["dnsNames"]
    (overlay,) = documents(OUTPUT / "overlays" / "local" / "kustomization.yaml")
    assert overlay["namespace"] == namespace
    (patch,) = [p for p in overlay["patches"] if p["target"].get("name") == name]
    (operation,) = yaml.safe_load(patch["patch"])
    assert operation["path"] == "/spec/dnsNames"
    return operation["value"]


def advertised_host(service: str, pod: str, namespace: str) -> str:
    """EMEUSE_ADVERTISED_HOST as the pod's environment expands it."""
    (sts,) = [
        d for d in documents(OUTPUT / "base" / f"{service}.yaml") if d["kind"] == "StatefulSet"
    ]
    env = {
        item["name"]: item.get("value")
        for item in sts["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    return (
        env["EMEUSE_ADVERTISED_HOST"]
        .replace("$(POD_NAME)", pod)
        .replace("$(POD_NAMESPACE)", namespace)
    )


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_ca(folder: Path) -> tuple[Path, Path]:
    """The namespace CA, as the self-signed Issuer makes it: (certificate, key)."""
    folder.mkdir()
    ca_key, ca = folder / "ca.key", folder / "ca.crt"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=namespace CA",
        "-days",
        "2",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    return ca, ca_key


def sign(folder: Path, ca: tuple[Path, Path], spec: dict, party: str) -> GrpcTls:
    """A certificate with the spec's names and usages, as the CA Issuer signs it."""
    key, csr, crt = (folder / f"{party}.{n}" for n in ("key", "csr", "crt"))
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    openssl("req", "-new", "-key", str(key), "-subj", f"/CN={spec['commonName']}", "-out", str(csr))
    names = [f"DNS:{n}" for n in spec["dnsNames"]] + [
        f"IP:{a}" for a in spec.get("ipAddresses", [])
    ]
    usages = {"server auth": "serverAuth", "client auth": "clientAuth"}
    extended = ",".join(usages[u] for u in spec["usages"] if u in usages)
    extensions = folder / f"{party}.ext"
    extensions.write_text(f"subjectAltName={','.join(names)}\nextendedKeyUsage={extended}\n")
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca[0]),
        "-CAkey",
        str(ca[1]),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        str(extensions),
        "-out",
        str(crt),
    )
    return GrpcTls("mtls", ca[0], crt, key)


def issue(folder: Path, spec: dict) -> GrpcTls:
    """A CA, and a certificate with the spec's names and usages, as cert-manager's CA
    Issuer signs it."""
    return sign(folder, make_ca(folder), spec, "k")


async def dial_each(
    tls: GrpcTls, names: list[str], caller: GrpcTls | None = None
) -> dict[str, str]:
    """Health over mutual TLS, served with `tls`, dialling each name (the channel checks the
    certificate against it) as `caller` (the server's own certificate unless given):
    SERVING, or the call's error code."""
    caller = tls if caller is None else caller
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = bind(server, "127.0.0.1:0", tls)
    await server.start()
    seen = {}
    try:
        for name in names:
            options = [("grpc.ssl_target_name_override", name)]
            async with open_aio_channel(f"127.0.0.1:{port}", caller, options) as channel:
                try:
                    answer = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=3
                    )
                    seen[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
                except grpc.aio.AioRpcError as exc:
                    seen[name] = exc.code().name
    finally:
        await server.stop(None)
    return seen


@pytest.mark.parametrize("namespace", [PRODUCTION_NAMESPACE, LOCAL_NAMESPACE])
def test_chronic_is_reached_under_mutual_tls_by_the_names_its_callers_dial(
    namespace: str, tmp_path: Path
) -> None:
    spec = certificate_spec("emeuse-chronic") | {
        "dnsNames": dns_names_in(namespace, "emeuse-chronic")
    }
    tls = issue(tmp_path / "tls", spec)
    access_dials = PEERS["access"]["EMEUSE_ACCESS_CHRONIC_GRPC"].split(":")[0]
    dialled = {
        "access": access_dials,
        "a peer instance": advertised_host("chronic", "emeuse-chronic-1", namespace),
        "another namespace": advertised_host("chronic", "emeuse-chronic-1", "elsewhere"),
        "another service's pod": advertised_host("home", "emeuse-home-0", namespace),
    }
    seen = asyncio.run(dial_each(tls, list(dialled.values())))
    assert {who: seen[name] for who, name in dialled.items()} == {
        "access": "SERVING",
        "a peer instance": "SERVING",
        "another namespace": "UNAVAILABLE",
        "another service's pod": "UNAVAILABLE",
    }


def production_certificates(rendered: dict[str, str]) -> dict[str, dict]:
    """The rendered base's certificates as the production overlay leaves them (its
    additions to dnsNames applied)."""
    specs = {
        doc["metadata"]["name"]: doc["spec"]
        for doc in yaml.safe_load_all(rendered["base/certificates.yaml"])
        if doc and doc["kind"] == "Certificate"
    }
    (overlay,) = yaml.safe_load_all(rendered["overlays/production/kustomization.yaml"])
    assert overlay["namespace"] == PRODUCTION_NAMESPACE
    for patch in overlay["patches"]:
        if patch["target"]["kind"] != "Certificate":
            continue
        for operation in yaml.safe_load(patch["patch"]):
            assert (operation["op"], operation["path"]) == ("add", "/spec/dnsNames/-")
            specs[patch["target"]["name"]]["dnsNames"].append(operation["value"])
    return specs


def test_a_partner_calls_chronic_from_outside_by_its_external_name_with_its_certificate(
    tmp_path: Path,
) -> None:
    rendered = render(
        partner_ids=["acme-labs"],
        grpc_partners=["acme-labs"],
        external_names={"chronic": ["chronic.grpc.example.org"]},
    ).files
    specs = production_certificates(rendered)
    ca = make_ca(tmp_path / "ca")
    chronic = sign(tmp_path / "ca", ca, specs["emeuse-chronic"], "chronic")
    partner = sign(tmp_path / "ca", ca, specs["emeuse-partner-acme-labs"], "partner")
    other_ca = issue(tmp_path / "other", specs["emeuse-partner-acme-labs"])
    # Signed by another CA, trusting the namespace's: only the server can refuse it.
    outsider = GrpcTls("mtls", ca[0], other_ca.cert_file, other_ca.key_file)

    as_partner = asyncio.run(
        dial_each(chronic, ["chronic.grpc.example.org", "chronic.example.org"], partner)
    )
    assert as_partner == {
        "chronic.grpc.example.org": "SERVING",
        "chronic.example.org": "UNAVAILABLE",
    }
    # Another CA's client certificate is refused in the handshake.
    assert asyncio.run(dial_each(chronic, ["chronic.grpc.example.org"], outsider)) == {
        "chronic.grpc.example.org": "UNAVAILABLE"
    }
    # Client auth only: served as a service's, the partner's certificate is refused.
    assert asyncio.run(dial_each(partner, ["emeuse-partner-acme-labs"], chronic)) == {
        "emeuse-partner-acme-labs": "UNAVAILABLE"
    }
