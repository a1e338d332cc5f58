#!/usr/bin/env bash
# make chaos: seeded rounds of faults (tests/chaos) against a broker of its own, started fresh
# here and stopped after, pass or fail. The rounds kill -9 this broker and restart it on its
# data (deploy/kafka/kafka.sh kill / up), so it must be nobody else's.
#   scripts/chaos.sh [--seed N] [--rounds R] [--readings K] [--short] [--full] ...
# CHAOS_ARGS adds arguments from make (make chaos CHAOS_ARGS="--rounds 20").
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export KAFKA_HOME="${KAFKA_HOME:-$root/.local/kafka-chaos}" KAFKA_PORT="${KAFKA_PORT:-29092}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-29093}"
export KAFKA_PARTNER_PORT="${KAFKA_PARTNER_PORT:-29094}"
export EMEUSE_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
export EMEUSE_KAFKA_PARTNER_BOOTSTRAP="127.0.0.1:$KAFKA_PARTNER_PORT"
trap 'deploy/kafka/kafka.sh down >/dev/null' EXIT
deploy/kafka/kafka.sh fresh || exit 1
# shellcheck disable=SC2086  # CHAOS_ARGS is a list of words
.venv/bin/python -m tests.chaos --workdir "$KAFKA_HOME/rounds" ${CHAOS_ARGS:-} "$@"
