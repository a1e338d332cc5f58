#!/usr/bin/env python3
"""Check every rendered manifest offline (`make lint`): core kinds against the Kubernetes
schemas (kubernetes-validate, strict: an unknown field fails), custom kinds against the CRD
schemas pinned in deploy/k8s/schemas/<group>/<version>/<Kind>.json where there is one, and
the Strimzi, Prometheus Operator and cert-manager kinds against the CRD validators pinned in
package.json (scripts/validate_crds.mjs, one Node run per file or overlay).

The overlays are built with `kubectl kustomize` when kubectl is installed, and their output
checked the same way; without kubectl only the base is checked (said on stdout)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"
CRD_VALIDATOR = ROOT / "scripts" / "validate_crds.mjs"
# Present once `npm ci` (make install) has run; the validators are its packages.
CRD_PACKAGES = ROOT / "node_modules" / "@kubernetes-models"
# The oldest Kubernetes the platform supports: gRPC probes are GA from 1.27.
KUBERNETES_VERSION = "1.30"


def _crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    path = SCHEMAS / api_version / f"{kind}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _label(where: str, doc: dict[str, Any]) -> str:
    return f"{where}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def operator_faults(documents: list[dict[str, Any]]) -> list[list[str] | None] | None:
    """Per document, its faults against the pinned Strimzi, Prometheus Operator or
    cert-manager CRD validators, or None for a kind they do not cover; None for all when
    Node or the npm packages are missing."""
    node = shutil.which("node")
    if node is None or not CRD_PACKAGES.is_dir():
        return None
    ran = subprocess.run(
        [node, str(CRD_VALIDATOR)],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        check=False,
    )
    if ran.returncode != 0:
        raise RuntimeError(f"{CRD_VALIDATOR.name} failed: {ran.stderr.strip()}")
    return [result["faults"] if result["checked"] else None for result in json.loads(ran.stdout)]


def check(documents: Iterable[dict[str, Any]], where: str, unchecked: set[str]) -> list[str]:
    """Faults of the documents, one line each; kinds no schema covers go to `unchecked`."""
    faults = []
    custom: list[dict[str, Any]] = []
    for doc in documents:
        label = _label(where, doc)
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            continue
        except kubernetes_validate.ValidationError as exc:
            faults.append(f"{label}: {exc.message} at {'/'.join(map(str, exc.path))}")
            continue
        except kubernetes_validate.SchemaNotFoundError:
            pass
        schema = _crd_schema(doc["apiVersion"], doc["kind"])
        if schema is None:
            custom.append(doc)
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
            faults.append(f"{label}: {error.message} at {'/'.join(map(str, error.path))}")
    if not custom:
        return faults
    results = operator_faults(custom)
    if results is None:
        unchecked.update(
            f"{d['apiVersion']} {d['kind']} (node_modules absent: npm ci)" for d in custom
        )
        return faults
    for doc, found in zip(custom, results, strict=True):
        if found is None:
            unchecked.add(f"{doc['apiVersion']} {doc['kind']}")
        else:
            faults += [f"{_label(where, doc)}: {fault}" for fault in found]
    return faults


def _load(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def main() -> int:
    unchecked: set[str] = set()
    faults: list[str] = []
    count = 0
    for path in sorted((K8S / "base").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        documents = _load(path.read_text(encoding="utf-8"))
        count += len(documents)
        faults += check(documents, str(path.relative_to(ROOT)), unchecked)
    kubectl = shutil.which("kubectl")
    overlays = sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())
    for overlay in overlays:
        if kubectl is None:
            print(f"manifests: kubectl not installed, overlay {overlay.name} not built")
            continue
        built = subprocess.run(
            [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
        )
        if built.returncode != 0:
            faults.append(f"overlay {overlay.name}: kustomize failed: {built.stderr.strip()}")
            continue
        documents = _load(built.stdout)
        count += len(documents)
        faults += check(documents, f"overlay {overlay.name}", unchecked)
    for fault in faults:
        print(fault, file=sys.stderr)
    if faults:
        return 1
    print(
        f"manifests: {count} resources read; core kinds valid for Kubernetes {KUBERNETES_VERSION},"
        " custom kinds for their pinned CRD schemas"
    )
    if unchecked:
        print(f"manifests: no pinned schema, not checked: {', '.join(sorted(unchecked))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
