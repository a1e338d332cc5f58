# Sourced by the scripts that start a broker of their own (test, chaos, bench): its data
# directory and ports, each overridable (a second run beside one sets its own).
# Ports stay below 32768: Linux gives 32768-60999 to client sockets, so a listener there
# can find its port taken by some connection.
#   broker_env <name> <port>   data in .local/kafka-<name>; controller port+1, partners port+2
broker_env() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  export KAFKA_HOME="${KAFKA_HOME:-$root/.local/kafka-$1}" KAFKA_PORT="${KAFKA_PORT:-$2}"
  export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
  export KAFKA_PARTNER_PORT="${KAFKA_PARTNER_PORT:-$((KAFKA_PORT + 2))}"
  export EMEUSE_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
  export EMEUSE_KAFKA_PARTNER_BOOTSTRAP="127.0.0.1:$KAFKA_PARTNER_PORT"
}
