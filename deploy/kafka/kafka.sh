#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one combined node) without Docker.
#   kafka.sh jars   resolve the broker jars from Maven Central into $KAFKA_HOME/libs
#   kafka.sh up     format storage if new, start the broker, wait until an admin call answers
#   kafka.sh down   stop the broker by its pid
#   kafka.sh fresh  stop it, delete $KAFKA_HOME, start it anew: a broker with no data, as
#                   make test, make bench and make chaos each want for their own
#   kafka.sh status exit 0 when the broker answers
#   kafka.sh pid    print the broker's pid (exit 1 when it is not running)
#   kafka.sh properties  print the configuration `up` would start the broker with
#   kafka.sh kill   kill -9 the broker, as a crash would (`up` restarts it on the same data);
#                   for the fault suite (make chaos)
# KAFKA_HOME (default .local/kafka) holds data/, logs/ and kafka.pid; KAFKA_LIBS the jars;
# KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_PARTNER_PORT (9092 / 9093 / 9094) let tests run a
# broker of their own; the partner port is the SCRAM listener partners log in on, SASL_SSL
# unless EMEUSE_KAFKA_PARTNER_PROTOCOL=SASL_PLAINTEXT (the test brokers, scripts/broker-env.sh).
# KAFKA_SECURE_PORT (9095; `off`: none) is the SASL_SSL listener of the platform's services
# and tools: TLS with the local CA's certificate and a SCRAM-SHA-512 user per service
# (scripts/certs.sh makes them, in SECRETS_DIR, default .local/secrets; docs/security.md).
# The PLAINTEXT listener (KAFKA_PORT) stays on loopback for the broker's own administration:
# the readiness check, platform users and ACLs, and the test brokers' loopback runs.
# One node of a cluster (deploy/kafka/cluster.sh sets these; unset, the single broker):
# KAFKA_NODE_ID (1), KAFKA_VOTERS (the quorum, 1@127.0.0.1:<controller port>), KAFKA_CLUSTER_ID
# (the same for every node; unset, a new one when the data dir is formatted), KAFKA_OVERRIDES
# (a properties file appended last: replication), KAFKA_PLATFORM_USERS=no (made once, after all).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
KAFKA_HOME="${KAFKA_HOME:-$root/.local/kafka}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_PARTNER_PORT="${KAFKA_PARTNER_PORT:-9094}"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
libs="${KAFKA_LIBS:-$root/.local/kafka/libs}"
pidfile="$KAFKA_HOME/kafka.pid"
KAFKA_SECURE_PORT="${KAFKA_SECURE_PORT:-9095}"
[[ "$KAFKA_SECURE_PORT" == off ]] && KAFKA_SECURE_PORT=""
PARTNER_PROTOCOL="${EMEUSE_KAFKA_PARTNER_PROTOCOL:-SASL_SSL}"
case "$PARTNER_PROTOCOL" in
  SASL_SSL|SASL_PLAINTEXT) ;;
  *) echo "kafka.sh: EMEUSE_KAFKA_PARTNER_PROTOCOL=$PARTNER_PROTOCOL: expected SASL_SSL or SASL_PLAINTEXT" >&2; exit 2 ;;
esac
SECRETS_DIR="${SECRETS_DIR:-$root/.local/secrets}"
NODE_ID="${KAFKA_NODE_ID:-1}"
VOTERS="${KAFKA_VOTERS:-1@127.0.0.1:$KAFKA_CONTROLLER_PORT}"

jars() {
  if [[ -f "$libs/.resolved" && "$libs/.resolved" -nt "$here/pom.xml" ]]; then return 0; fi
  rm -rf "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$libs/.resolved"
}

answers() {
  # Asked on the loopback PLAINTEXT listener, whatever the caller's own Kafka settings.
  EMEUSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT "$PYTHON" -m emeuse.cli.kafka_ready --bootstrap "$BOOTSTRAP" --timeout "${1:-3}" >/dev/null 2>&1
}

running() {
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

up() {
  jars
  if running; then
    echo "kafka: already running (pid $(cat "$pidfile")) on $BOOTSTRAP"
    return 0
  fi
  mkdir -p "$KAFKA_HOME/data" "$KAFKA_HOME/logs"
  local props="$KAFKA_HOME/server.properties"
  write_properties "$props"
  if [[ ! -f "$KAFKA_HOME/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="${KAFKA_CLUSTER_ID:-$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null)}"
    java -cp "$libs/*" -Dlog4j.configuration="file:$here/log4j.properties" \
      -Dkafka.logs.dir="$KAFKA_HOME/logs" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --ignore-formatted >/dev/null
  fi
  nohup java -Xms512m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$here/log4j.properties" -Dkafka.logs.dir="$KAFKA_HOME/logs" \
    -cp "$libs/*" kafka.Kafka "$props" >"$KAFKA_HOME/logs/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if answers 2; then
      echo "kafka: up (pid $(cat "$pidfile")): admin $BOOTSTRAP (PLAINTEXT, loopback), partners 127.0.0.1:$KAFKA_PARTNER_PORT ($PARTNER_PROTOCOL); logs in $KAFKA_HOME/logs"
      if [[ -n "$KAFKA_SECURE_PORT" && "${KAFKA_PLATFORM_USERS:-yes}" != no ]]; then
        "$PYTHON" -m emeuse.cli.platform_users --bootstrap "$BOOTSTRAP" --passwords "$SECRETS_DIR/kafka"
        echo "kafka: SASL_SSL (SCRAM-SHA-512) for the platform on 127.0.0.1:$KAFKA_SECURE_PORT"
      fi
      return 0
    fi
    if ! running; then
      echo "kafka: the broker exited at start; see $KAFKA_HOME/logs" >&2
      tail -n 20 "$KAFKA_HOME/logs/stdout.log" "$KAFKA_HOME/logs/server.log" >&2 || true
      return 1
    fi
    sleep 1
  done
  echo "kafka: no answer on $BOOTSTRAP after 120 s; see $KAFKA_HOME/logs" >&2
  return 1
}

# The broker's configuration: the base file, then this broker's folder, ports and listeners.
write_properties() {
  local props="$1"
  cp "$here/server.properties" "$props"
  # Later keys win in a Java properties file.
  cat >>"$props" <<PROPS
log.dirs=$KAFKA_HOME/data
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,PARTNER://127.0.0.1:$KAFKA_PARTNER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,PARTNER://127.0.0.1:$KAFKA_PARTNER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PARTNER:$PARTNER_PROTOCOL
node.id=$NODE_ID
controller.quorum.voters=$VOTERS
PROPS
  if [[ "$PARTNER_PROTOCOL" == SASL_SSL ]]; then partner_tls "$props"; fi
  if [[ -n "$KAFKA_SECURE_PORT" ]]; then secure_listener "$props"; fi
  if [[ -n "${KAFKA_OVERRIDES:-}" ]]; then cat "$KAFKA_OVERRIDES" >>"$props"; fi
}

# The partner listener with TLS: the broker's certificate from the local CA (scripts/certs.sh),
# which `emeuse partner add` names in each partner's settings file (ssl.ca.location).
partner_tls() {
  local props="$1"
  SECRETS_DIR="$SECRETS_DIR" "$root/scripts/certs.sh" >/dev/null
  cat >>"$props" <<PROPS
listener.name.partner.ssl.keystore.type=PEM
listener.name.partner.ssl.keystore.location=$SECRETS_DIR/tls/kafka.pem
PROPS
}

# The platform's SASL_SSL listener: appended after the base listeners, so its lines win.
secure_listener() {
  local props="$1" tls="$SECRETS_DIR/tls"
  SECRETS_DIR="$SECRETS_DIR" "$root/scripts/certs.sh" >/dev/null
  # The only super user is the loopback listener's ANONYMOUS. Every platform user (a service
  # each, emeuse-cli for the tools) holds the ACLs platform_users grants (up, below), drawn
  # by emeuse.runtime.acls from what each service declares, as deploy/k8s's KafkaUsers.
  cat >>"$props" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,PARTNER://127.0.0.1:$KAFKA_PARTNER_PORT,SECURE://127.0.0.1:$KAFKA_SECURE_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,PARTNER://127.0.0.1:$KAFKA_PARTNER_PORT,SECURE://127.0.0.1:$KAFKA_SECURE_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PARTNER:$PARTNER_PROTOCOL,SECURE:SASL_SSL
listener.name.secure.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.secure.ssl.keystore.type=PEM
listener.name.secure.ssl.keystore.location=$tls/kafka.pem
super.users=User:ANONYMOUS
PROPS
}

down() {
  if ! running; then
    rm -f "$pidfile"
    echo "kafka: not running"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "kafka: stopped"; return 0; }
    sleep 1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "kafka: killed after 60 s"
}

# A crash, not a stop: no controlled shutdown, logs left unflushed; `up` recovers the data dir.
crash() {
  if ! running; then
    rm -f "$pidfile"
    echo "kafka: not running"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$pidfile"
  echo "kafka: killed (pid $pid)"
}

case "${1:-}" in
  jars) jars ;;
  up) up ;;
  down) down ;;
  fresh) down >/dev/null; rm -rf "$KAFKA_HOME"; up ;;
  status) answers 3 ;;
  pid) running && cat "$pidfile" ;;
  properties) props="$(mktemp)"; write_properties "$props"; cat "$props"; rm -f "$props" ;;
  kill) crash ;;
  *) echo "usage: $0 jars|up|down|fresh|status|pid|kill|properties" >&2; exit 2 ;;
esac
