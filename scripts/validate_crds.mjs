// Check Strimzi, Prometheus Operator and cert-manager resources against their CRD schemas,
// offline.
//
// Read by scripts/validate_manifests.py (`make lint`): stdin is a JSON array of resources,
// stdout a JSON array with one entry per resource, in the same order:
//   {"checked": false}                          no pinned validator for its apiVersion and kind
//   {"checked": true, "faults": ["... at /spec/partitions", ...]}   [] when valid
// The validators are the CRDs' openAPIV3Schema compiled by kubernetes-models-ts, pinned in
// package.json (docs/operations.md, "Schemas of the custom resources", says which releases).

import { readFileSync } from "node:fs";

// Only these groups are looked up, and a kind must be a plain name: the import path is
// built from the resource, so nothing else may reach it.
const PACKAGES = {
  "kafka.strimzi.io": "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io",
  "core.strimzi.io": "@kubernetes-models/strimzi-kafka-operator/core.strimzi.io",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator/monitoring.coreos.com",
  "cert-manager.io": "@kubernetes-models/cert-manager/cert-manager.io",
};
const NAME = /^[A-Za-z0-9]+$/;

async function modelOf(apiVersion, kind) {
  const [group, version] = String(apiVersion).split("/");
  const root = PACKAGES[group];
  if (!root || !NAME.test(version ?? "") || !NAME.test(String(kind))) return null;
  try {
    const module = await import(`${root}/${version}/${kind}`);
    return module[kind] ?? null;
  } catch (error) {
    if (error?.code === "ERR_PACKAGE_PATH_NOT_EXPORTED" || error?.code === "ERR_MODULE_NOT_FOUND") {
      return null;
    }
    throw error;
  }
}

function describe(error) {
  const where = error.instancePath || "/";
  const allowed = error.params?.allowedValues;
  const detail = allowed ? ` (${allowed.join(", ")})` : "";
  return `${error.message}${detail} at ${where}`;
}

async function check(resource) {
  const Model = await modelOf(resource?.apiVersion, resource?.kind);
  if (Model === null) return { checked: false };
  try {
    new Model(resource).validate();
    return { checked: true, faults: [] };
  } catch (error) {
    if (!Array.isArray(error.errors)) throw error;
    return { checked: true, faults: error.errors.map(describe) };
  }
}

const resources = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const resource of resources) results.push(await check(resource));
process.stdout.write(JSON.stringify(results));
