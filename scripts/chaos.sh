#!/usr/bin/env bash
# make chaos: seeded rounds of faults (tests/chaos) against a broker of its own, started fresh
# here and stopped after, pass or fail. The rounds kill -9 this broker and restart it on its
# data (deploy/kafka/kafka.sh kill / up), so it must be nobody else's.
#   scripts/chaos.sh [--seed N] [--rounds R] [--readings K] [--short] [--full] [--load simulate] ...
# CHAOS_ARGS adds arguments from make (make chaos CHAOS_ARGS="--rounds 20").
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/broker-env.sh
. scripts/broker-env.sh
broker_env chaos 29092
trap 'deploy/kafka/kafka.sh down >/dev/null' EXIT
deploy/kafka/kafka.sh fresh || exit 1
# shellcheck disable=SC2086  # CHAOS_ARGS is a list of words
.venv/bin/python -m tests.chaos --workdir "$KAFKA_HOME/rounds" ${CHAOS_ARGS:-} "$@"
