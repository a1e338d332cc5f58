"""cert-manager resources of the platform's gRPC mutual TLS: the namespace's own CA, a
certificate per service and for the tools, a client certificate per partner calling gRPC
(deploy/partners.toml, `grpc = true`), renewed by cert-manager and taken by the running
services without a restart (emeuse.runtime.certificates follows the mounted files).

A self-signed Issuer signs the CA once; the CA Issuer signs every party's certificate. A
party's Secret (`emeuse-<party>-tls`) holds `tls.crt`, `tls.key` and `ca.crt`, mounted
whole where EMEUSE_TLS_CA_FILE and EMEUSE_<SERVICE>_TLS_CERT_FILE / _KEY_FILE point.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emeuse import partners
from emeuse.deploy.strimzi import PART_OF
from emeuse.registry import SERVICES
from emeuse.runtime.security import TOOLS

Manifest = dict[str, Any]

API = "cert-manager.io/v1"
SELF_SIGNED = "emeuse-selfsigned"
CA = "emeuse-ca"  # the CA Certificate, its Secret and the Issuer signing with it
# The namespace the base is rendered for; an overlay in another one patches the names.
NAMESPACE = "emeuse"
CLUSTER_DOMAIN = "cluster.local"
# A party's certificate lives 90 days and is renewed 30 days ahead, so
# EmeuseCertificateExpiring (14 days ahead) fires only when renewals stop.
DURATION, RENEW_BEFORE = "2160h", "720h"
CA_DURATION, CA_RENEW_BEFORE = "87600h", "8760h"
# Who may present a certificate (mutual TLS): every service and the tools.
PARTIES = (*SERVICES, TOOLS)
SCRAPER = "prometheus"


def _metadata(name: str) -> Manifest:
    return {"name": name, "labels": {"app.kubernetes.io/part-of": PART_OF}}


def tls_secret(party: str) -> str:
    """The Secret cert-manager keeps the party's key, certificate and CA in."""
    return f"emeuse-{party}-tls"


def dns_names(party: str, namespace: str = NAMESPACE) -> list[str]:
    """The names a party is dialled by: its Service as a caller in the namespace writes it
    (access dials `emeuse-chronic`), the Service's longer forms (callers from another
    namespace, partners' adapters in the cluster), every pod of its headless Service (an
    instance forwarding a call to the key's owner dials EMEUSE_ADVERTISED_HOST,
    `<pod>.emeuse-<svc>-pods.<namespace>.svc`) and localhost (`kubectl port-forward`).
    The tools, Prometheus and partners are dialled by no one: theirs are client certificates."""
    if party not in SERVICES:
        return [f"emeuse-{party}"]
    service = f"emeuse-{party}"
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.{CLUSTER_DOMAIN}",
        f"*.{service}-pods.{namespace}.svc",
        "localhost",
    ]


def issuers() -> list[Manifest]:
    """The self-signed Issuer, the CA it signs and the CA Issuer every party's uses."""
    return [
        {
            "apiVersion": API,
            "kind": "Issuer",
            "metadata": _metadata(SELF_SIGNED),
            "spec": {"selfSigned": {}},
        },
        {
            "apiVersion": API,
            "kind": "Certificate",
            "metadata": _metadata(CA),
            "spec": {
                "isCA": True,
                "commonName": "e-Meuse sante platform CA",
                "subject": {"organizations": ["e-Meuse sante"]},
                "secretName": CA,
                "duration": CA_DURATION,
                "renewBefore": CA_RENEW_BEFORE,
                # A renewed CA keeps its key, so certificates it signed before still verify
                # against it: renewing the CA never breaks the running parties.
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
                "issuerRef": {"name": SELF_SIGNED, "kind": "Issuer", "group": "cert-manager.io"},
            },
        },
        {
            "apiVersion": API,
            "kind": "Issuer",
            "metadata": _metadata(CA),
            "spec": {"ca": {"secretName": CA}},
        },
    ]


def party_certificate(party: str, namespace: str = NAMESPACE) -> Manifest:
    """A party's certificate, server and client alike (mutual TLS), a new key each time."""
    names: Manifest = {"dnsNames": dns_names(party, namespace)}
    if party in SERVICES:
        names["ipAddresses"] = ["127.0.0.1"]  # `kubectl port-forward`, then dial 127.0.0.1
    return {
        "apiVersion": API,
        "kind": "Certificate",
        "metadata": _metadata(f"emeuse-{party}"),
        "spec": {
            "secretName": tls_secret(party),
            "commonName": f"emeuse-{party}",
            "subject": {"organizations": ["e-Meuse sante"]},
            **names,
            "duration": DURATION,
            "renewBefore": RENEW_BEFORE,
            "privateKey": {
                "algorithm": "ECDSA",
                "size": 256,
                # PKCS#8, as scripts/certs.sh writes it: what gRPC reads.
                "encoding": "PKCS8",
                "rotationPolicy": "Always",
            },
            "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
            "issuerRef": {"name": CA, "kind": "Issuer", "group": "cert-manager.io"},
        },
    }


def partner_party(partner_id: str) -> str:
    return f"partner-{partners.check_partner_id(partner_id)}"


def partner_certificate(partner_id: str) -> Manifest:
    """The client certificate a partner's back end presents when it calls gRPC from
    outside (Secret `emeuse-partner-<id>-tls`, handed over with its token): client auth
    only, so it cannot pass for a service."""
    certificate = party_certificate(partner_party(partner_id))
    certificate["spec"]["usages"] = ["digital signature", "key encipherment", "client auth"]
    return certificate


def certificates(scraper: bool = False, grpc_partners: Iterable[str] = ()) -> list[Manifest]:
    """The issuers and every party's certificate; with `scraper`, Prometheus' too (its
    client certificate for scraping /metrics over mutual TLS); one per partner of
    `grpc_partners` (deploy/partners.toml, `grpc = true`)."""
    parties = (*PARTIES, SCRAPER) if scraper else PARTIES
    return [
        *issuers(),
        *(party_certificate(party) for party in parties),
        *(partner_certificate(partner_id) for partner_id in grpc_partners),
    ]
