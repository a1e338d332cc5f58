# Sourced by the scripts that start a broker of their own (test, chaos, bench): its data
# directory and ports, each overridable (a second run beside one sets its own).
# Ports stay below 32768: Linux gives 32768-60999 to client sockets, so a listener there
# can find its port taken by some connection.
#   broker_env <name> <port>   data in .local/kafka-<name>; controller port+1, partners port+2
# These brokers are the loopback tests' own, so plaintext is chosen here, explicitly (the
# platform's default is TLS, docs/security.md): services and tools on the PLAINTEXT listener,
# gRPC and /metrics without TLS, partners on SASL_PLAINTEXT, and no SASL_SSL listener unless
# the script opens one (scripts/test.sh does, for tests/integration/test_encryption.py).
broker_env() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  export KAFKA_HOME="${KAFKA_HOME:-$root/.local/kafka-$1}" KAFKA_PORT="${KAFKA_PORT:-$2}"
  export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
  export KAFKA_PARTNER_PORT="${KAFKA_PARTNER_PORT:-$((KAFKA_PORT + 2))}"
  export EMEUSE_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
  export EMEUSE_KAFKA_PARTNER_BOOTSTRAP="127.0.0.1:$KAFKA_PARTNER_PORT"
  export KAFKA_SECURE_PORT="${KAFKA_SECURE_PORT:-off}"
  export EMEUSE_GRPC_TLS=off EMEUSE_METRICS_TLS=off EMEUSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT
  export EMEUSE_KAFKA_PARTNER_PROTOCOL=SASL_PLAINTEXT
}
