#!/usr/bin/env bash
# A local Kafka cluster on one machine: three KRaft nodes, each controller and broker (a quorum
# of three), from the same jars as the single broker, each node run by deploy/kafka/kafka.sh.
# Replication 3, min.insync.replicas 2 (cluster.properties): one node may die, nothing is lost.
#   cluster.sh up          format new data dirs with one cluster id, start the nodes that are
#                          not running, wait until each answers
#   cluster.sh down        stop every node
#   cluster.sh fresh       stop them, delete $KAFKA_HOME, start anew
#   cluster.sh status      exit 0 when every node answers
#   cluster.sh env         print the exports for services and tools on this cluster: bootstrap
#                          (all three nodes), EMEUSE_REPLICATION_FACTOR=3, protocols
#   cluster.sh node N CMD  kafka.sh's CMD (up, down, kill, pid, status, properties) for node N
#                          (1-3): `node 2 kill` then `node 2 up` crashes and restarts it on its data
# KAFKA_HOME (default .local/kafka-cluster) holds cluster-id and node-1..node-3 (each with
# data/, logs/, kafka.pid). KAFKA_CLUSTER_PORT (9192): node N listens on base+10(N-1) (admin,
# PLAINTEXT, loopback), +1 controller, +2 partners, +3 the platform's SASL_SSL (none when
# KAFKA_SECURE_PORT=off, as scripts/broker-env.sh sets for test brokers). Listeners, TLS and
# users are the single broker's (kafka.sh's header); the platform users are made once.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
home="${KAFKA_HOME:-$root/.local/kafka-cluster}"
base="${KAFKA_CLUSTER_PORT:-9192}"
secure="${KAFKA_SECURE_PORT:-on}"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
export SECRETS_DIR="${SECRETS_DIR:-$root/.local/secrets}"
NODES=(1 2 3)

port() { echo $((base + 10 * ($1 - 1) + $2)); }

voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@127.0.0.1:$(port "$n" 1)"); done
  (IFS=,; echo "${out[*]}")
}

bootstrap() {
  local n offset="$1" out=()
  for n in "${NODES[@]}"; do out+=("127.0.0.1:$(port "$n" "$offset")"); done
  (IFS=,; echo "${out[*]}")
}

# kafka.sh for node $1, in a subshell: its own home, ports and id, the cluster's quorum.
node() {
  local n="$1"
  shift
  [[ " ${NODES[*]} " == *" $n "* ]] || { echo "cluster.sh: no node $n (1-3)" >&2; return 2; }
  (
    export KAFKA_HOME="$home/node-$n" KAFKA_NODE_ID="$n" KAFKA_VOTERS="$(voters)"
    export KAFKA_PORT="$(port "$n" 0)" KAFKA_CONTROLLER_PORT="$(port "$n" 1)"
    export KAFKA_PARTNER_PORT="$(port "$n" 2)" KAFKA_PLATFORM_USERS=no
    export KAFKA_OVERRIDES="$here/cluster.properties"
    if [[ "$secure" == off ]]; then export KAFKA_SECURE_PORT=off; else export KAFKA_SECURE_PORT="$(port "$n" 3)"; fi
    if [[ -s "$home/cluster-id" ]]; then export KAFKA_CLUSTER_ID="$(cat "$home/cluster-id")"; fi
    exec "$here/kafka.sh" "$@"
  )
}

up() {
  "$here/kafka.sh" jars
  mkdir -p "$home"
  # Into place whole or not at all: an empty id (a failed java) would have each node format
  # an id of its own, and the quorum would never form.
  if [[ ! -s "$home/cluster-id" ]]; then
    local made="$home/cluster-id.$$"
    if ! java -cp "${KAFKA_LIBS:-$root/.local/kafka/libs}/*" kafka.tools.StorageTool random-uuid \
      2>"$made.err" >"$made" || [[ ! -s "$made" ]]; then
      echo "cluster.sh: no cluster id made (kafka.tools.StorageTool random-uuid):" >&2
      cat "$made.err" >&2
      rm -f "$made" "$made.err"
      return 1
    fi
    mv "$made" "$home/cluster-id"
    rm -f "$made.err"
  fi
  # Made once here, not by three nodes at once.
  if [[ "$secure" != off || "${EMEUSE_KAFKA_PARTNER_PROTOCOL:-SASL_SSL}" == SASL_SSL ]]; then
    "$root/scripts/certs.sh" >/dev/null
  fi
  # Together: a node answers only once a quorum of controllers (two of three) has formed.
  local n pids=() failed=0
  for n in "${NODES[@]}"; do
    node "$n" up &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || failed=1; done
  ((failed == 0)) || return 1
  if [[ "$secure" != off ]]; then
    "$PYTHON" -m emeuse.cli.platform_users --bootstrap "127.0.0.1:$(port 1 0)" --passwords "$SECRETS_DIR/kafka"
  fi
  echo "kafka cluster: 3 nodes up, replication 3, min.insync.replicas 2; \`$0 env\` for the services"
}

down() {
  local n
  for n in "${NODES[@]}"; do node "$n" down & done
  wait
}

status() {
  local n
  for n in "${NODES[@]}"; do node "$n" status || return 1; done
}

env_lines() {
  echo "export EMEUSE_REPLICATION_FACTOR=3"
  if [[ "$secure" == off ]]; then
    echo "export EMEUSE_KAFKA_BOOTSTRAP=$(bootstrap 0) EMEUSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"
  else
    echo "export EMEUSE_KAFKA_BOOTSTRAP=$(bootstrap 3) EMEUSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL"
  fi
  echo "export EMEUSE_KAFKA_PARTNER_BOOTSTRAP=$(bootstrap 2)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  fresh) down >/dev/null; rm -rf "$home"; up ;;
  status) status ;;
  env) env_lines ;;
  node) shift; [[ $# -ge 2 ]] || { echo "usage: $0 node N up|down|kill|pid|status|properties" >&2; exit 2; }; node "$@" ;;
  *) echo "usage: $0 up|down|fresh|status|env|node N CMD" >&2; exit 2 ;;
esac
