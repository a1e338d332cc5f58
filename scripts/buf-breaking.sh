#!/usr/bin/env bash
# buf breaking against main: partners' consumers must keep working (docs: schema evolution).
# Skipped only where there is no main branch to compare with (a repository's first commit).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! git rev-parse --verify --quiet main >/dev/null || [[ -z "$(git ls-tree -r --name-only main -- proto)" ]]; then
  echo "buf breaking: no proto/ on main yet, nothing to compare"
  exit 0
fi
node_modules/.bin/buf breaking --against '.git#branch=main'
