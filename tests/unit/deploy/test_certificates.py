"""The cluster's certificates cover the names the services dial each other by, in each
overlay's namespace: a certificate made as cert-manager would issue the rendered one (its
names, its usages) is served under mutual TLS and dialled by each of those names, as gRPC
checks them (wildcards included). In process, with openssl; no cluster."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from emeuse.deploy.render import LOCAL_NAMESPACE, OUTPUT, PRODUCTION_NAMESPACE
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


def issue(folder: Path, spec: dict) -> GrpcTls:
    """A CA, and a certificate with the spec's names and usages, as cert-manager's CA
    Issuer signs it."""
    folder.mkdir()
    ca_key, ca, key, csr, crt = (
        folder / n for n in ("ca.key", "ca.crt", "k.key", "k.csr", "k.crt")
    )
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
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    openssl("req", "-new", "-key", str(key), "-subj", f"/CN={spec['commonName']}", "-out", str(csr))
    names = [f"DNS:{n}" for n in spec["dnsNames"]] + [
        f"IP:{a}" for a in spec.get("ipAddresses", [])
    ]
    usages = {"server auth": "serverAuth", "client auth": "clientAuth"}
    extended = ",".join(usages[u] for u in spec["usages"] if u in usages)
    extensions = folder / "ext"
    extensions.write_text(f"subjectAltName={','.join(names)}\nextendedKeyUsage={extended}\n")
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        str(extensions),
        "-out",
        str(crt),
    )
    return GrpcTls("mtls", ca, crt, key)


async def dial_each(tls: GrpcTls, names: list[str]) -> dict[str, str]:
    """Health over mutual TLS, dialling each name (the channel checks the certificate
    against it): SERVING, or the call's error code."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = bind(server, "127.0.0.1:0", tls)
    await server.start()
    seen = {}
    try:
        for name in names:
            options = [("grpc.ssl_target_name_override", name)]
            async with open_aio_channel(f"127.0.0.1:{port}", tls, options) as channel:
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
