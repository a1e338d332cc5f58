#!/usr/bin/env bash
# The local platform without Docker: Kafka, registry topics, the services, Prometheus.
#   platform.sh up      start what is not running, wait until each answers, print where
#   platform.sh down    stop the services and Prometheus (SIGTERM, then SIGKILL after 20 s), then Kafka
#   platform.sh status  what runs, and where
# State, logs and pid files live under .local/ (ignored by git).
# Encrypted by default (docs/security.md): scripts/certs.sh makes a local CA, a certificate
# per party and SCRAM passwords (once); every gRPC port serves mutual TLS, every /metrics
# port HTTPS with mutual TLS (Prometheus presents a certificate of its own); services and
# tools log in to the broker's SASL_SSL listener (9095); partners' listener (9094) is SASL_SSL.
# These are the settings' own defaults, so the tools run in another shell use them too.
# Opting out, for loopback only: EMEUSE_GRPC_TLS=off (gRPC and /metrics)
# EMEUSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT EMEUSE_KAFKA_PARTNER_PROTOCOL=SASL_PLAINTEXT, for
# `make up` and the tools alike.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
local_dir="$root/.local"
run="$local_dir/run"
logs="$local_dir/logs"
venv="$root/.venv/bin"
# Services resolve their default paths (.local/...) from the repository root.
cd "$root"
services=(prevention chronic access home gateway evaluation coordination)
declare -A grpc_port=([prevention]=50051 [chronic]=50052 [access]=50053 [home]=50054 [gateway]=50055 [evaluation]=50056 [coordination]=50057)
declare -A metrics_port=([prevention]=9101 [chronic]=9102 [access]=9103 [home]=9104 [gateway]=9105 [evaluation]=9106 [coordination]=9107)
prometheus_port=9090
partner_port="${KAFKA_PARTNER_PORT:-9094}"
secure_port="${KAFKA_SECURE_PORT:-9095}"
# What `up` chose, kept for `status` (which may run in another shell).
security_file="$run/security"

alive() { [[ -f "$run/$1.pid" ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

start() {  # name, command...
  local name="$1"; shift
  if alive "$name"; then echo "$name: already running (pid $(cat "$run/$name.pid"))"; return 0; fi
  nohup "$@" >"$logs/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

stop() {
  local name="$1" pid
  alive "$name" || { rm -f "$run/$name.pid"; return 0; }
  pid="$(cat "$run/$name.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    # A service that does not stop in time is ended.
    kill -KILL "$pid" 2>/dev/null || true
    echo "$name: killed after 20 s"
  else
    echo "$name: stopped"
  fi
  rm -f "$run/$name.pid"
}

up() {
  mkdir -p "$run" "$logs"
  "$root/scripts/certs.sh" >/dev/null
  "$root/deploy/kafka/kafka.sh" up
  printf '%s\n' "${EMEUSE_GRPC_TLS:-mtls}" "${EMEUSE_KAFKA_SECURITY_PROTOCOL:-SASL_SSL}" \
    "${EMEUSE_KAFKA_PARTNER_PROTOCOL:-SASL_SSL}" "${EMEUSE_METRICS_TLS:-${EMEUSE_GRPC_TLS:-mtls}}" \
    >"$security_file"
  # A gRPC token for each service and for the operator, made once (see docs/operations.md: gRPC callers).
  for caller in "${services[@]}" operator; do
    [[ -f "$local_dir/secrets/$caller.token" ]] || "$venv/emeuse" callers add "$caller" \
      --callers-file "$local_dir/secrets/grpc-callers" >/dev/null
  done
  "$venv/emeuse" topics create >/dev/null
  echo "topics: registry topics present (emeuse topics)"
  for service in "${services[@]}"; do
    start "$service" "$venv/python" -m "services.$service"
  done
  local targets=()
  for service in "${services[@]}"; do targets+=("127.0.0.1:${grpc_port[$service]}"); done
  if ! "$venv/emeuse" health --wait 90 "${targets[@]}" >/dev/null; then
    "$venv/emeuse" health "${targets[@]}" || true
    echo "a service did not become SERVING; see $logs/<service>.log" >&2
    return 1
  fi
  # Scrapes as the services serve /metrics (HTTPS with the CA and its own certificate, or
  # plain HTTP under the opt-out): rendered from the same settings, checked before it runs.
  "$venv/python" -m emeuse.deploy.prometheus --out "$run/prometheus.yml"
  if command -v promtool >/dev/null; then
    promtool check config "$run/prometheus.yml" >/dev/null
  fi
  start prometheus prometheus --config.file="$run/prometheus.yml" \
    --storage.tsdb.path="$local_dir/prometheus" --web.listen-address="127.0.0.1:$prometheus_port"
  for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$prometheus_port/-/ready" >/dev/null 2>&1 && break
    sleep 0.5
  done
  status
}

status() {
  local grpc_tls=mtls kafka_protocol=SASL_SSL partner_protocol=SASL_SSL metrics_tls=""
  if [[ -f "$security_file" ]]; then
    { read -r grpc_tls; read -r kafka_protocol; read -r partner_protocol; read -r metrics_tls || true; } \
      <"$security_file"
  fi
  metrics_tls="${metrics_tls:-$grpc_tls}"
  local metrics_scheme=https
  [[ "$metrics_tls" == off ]] && metrics_scheme=http
  local platform_listener="SASL_SSL 127.0.0.1:$secure_port"
  [[ "$kafka_protocol" == PLAINTEXT ]] && platform_listener="PLAINTEXT 127.0.0.1:9092"
  printf '%-12s %-8s %-25s %-30s %s\n' WHAT PID LISTENS METRICS LOG
  printf '%-12s %-8s %-25s %-30s %s\n' kafka "$(cat "$local_dir/kafka/kafka.pid" 2>/dev/null || echo -)" \
    "$platform_listener" "-" "$local_dir/kafka/logs/server.log"
  printf '%-12s %-8s %-25s %-30s %s\n' "  partners" "" "$partner_protocol 127.0.0.1:$partner_port" "-" \
    "credentials: emeuse partner add (.local/secrets/partners/)"
  printf '%-12s %-8s %-25s %-30s %s\n' "  admin" "" "PLAINTEXT 127.0.0.1:9092" "-" \
    "loopback only: the broker's administration (kafka.sh), loopback tests"
  for service in "${services[@]}"; do
    local pid="-"; alive "$service" && pid="$(cat "$run/$service.pid")"
    printf '%-12s %-8s %-25s %-30s %s\n' "$service" "$pid" "gRPC 127.0.0.1:${grpc_port[$service]}" \
      "$metrics_scheme://127.0.0.1:${metrics_port[$service]}/metrics" "$logs/$service.log"
  done
  local pid="-"; alive prometheus && pid="$(cat "$run/prometheus.pid")"
  printf '%-12s %-8s %-25s %-30s %s\n' prometheus "$pid" "http://127.0.0.1:$prometheus_port" "-" "$logs/prometheus.log"
  echo "gRPC tokens: $local_dir/secrets/ (yours: operator.token; add callers with emeuse callers add)"
  echo "encryption: gRPC $grpc_tls; services and tools to Kafka $kafka_protocol (SCRAM users emeuse-<service>," \
    "emeuse-cli); partners $partner_protocol. CA, certificates, passwords: $local_dir/secrets/{tls,kafka}/;" \
    "/metrics $metrics_scheme (EMEUSE_METRICS_TLS $metrics_tls; docs/security.md)"
  echo "stop everything with: make down"
}

down() {
  stop prometheus
  # In reverse start order, from the one list of services (none forgotten).
  local index
  for ((index = ${#services[@]} - 1; index >= 0; index--)); do stop "${services[index]}"; done
  "$root/deploy/kafka/kafka.sh" down
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
