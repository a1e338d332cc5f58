#!/usr/bin/env bash
# make bench: speed targets are checked here, never in timed tests.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/bench_envelope.py
.venv/bin/python benchmarks/bench_chronic_rules.py
.venv/bin/python benchmarks/bench_access_matching.py
