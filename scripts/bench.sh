#!/usr/bin/env bash
# make bench: speed targets are checked here, never in timed tests.
# Every benchmark runs, even after one failed; the exit status is non-zero if any did.
# The benchmark on the real platform gets a broker of its own (127.0.0.1:25092, controller
# 25093, partner listener 25094, fresh data every run), stopped after, pass or fail.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
failed=()
# The plot and the profiler are for benchmarks only: not installed by `make install`.
.venv/bin/python -m pip install --quiet -c constraints.txt -e '.[bench]' || echo "bench: no plot"
run() {
  echo "== $1"
  "${@:2}" || failed+=("$1")
}
run envelope .venv/bin/python benchmarks/bench_envelope.py
run chronic_rules .venv/bin/python benchmarks/bench_chronic_rules.py
run access_matching .venv/bin/python benchmarks/bench_access_matching.py

# shellcheck source=scripts/broker-env.sh
. scripts/broker-env.sh
broker_env bench 25092
trap 'deploy/kafka/kafka.sh down >/dev/null' EXIT
if deploy/kafka/kafka.sh fresh; then
  # It reuses the integration tests' harness; tests/ is not an installed package.
  run consent_withdrawal env PYTHONPATH="$root" .venv/bin/python \
    benchmarks/bench_consent_withdrawal.py
  # With where chronic's CPU goes (py-spy), from 5 s after its start.
  run kernel env PYTHONPATH="$root" BENCH_PROFILE="${BENCH_PROFILE:-5}" .venv/bin/python \
    benchmarks/bench_kernel.py
  run kernel_states env PYTHONPATH="$root" .venv/bin/python benchmarks/bench_kernel_states.py
  # The seven services under a seeded `emeuse simulate --dry-run` load, beside a bare loop.
  run simulate env PYTHONPATH="$root" .venv/bin/python benchmarks/bench_simulate.py
else
  failed+=("consent_withdrawal (no broker)")
fi
if (( ${#failed[@]} )); then
  echo "bench: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "bench: all targets met"
