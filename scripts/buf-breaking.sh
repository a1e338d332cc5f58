#!/usr/bin/env bash
# buf breaking against main, and against the last released schemas (sdk/descriptors/): partners'
# consumers must keep working (docs: schema evolution, schema changelog).
# main is skipped only where there is none to compare with (a repository's first commit).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
released="$(find sdk/descriptors -name 'emeuse-schemas-*.binpb' 2>/dev/null | sort -V | tail -n 1)"
if [[ -n "$released" ]]; then
  node_modules/.bin/buf breaking --against "$released"
fi
if ! git rev-parse --verify --quiet main >/dev/null || [[ -z "$(git ls-tree -r --name-only main -- proto)" ]]; then
  echo "buf breaking: no proto/ on main yet, nothing to compare"
  exit 0
fi
node_modules/.bin/buf breaking --against '.git#branch=main'
