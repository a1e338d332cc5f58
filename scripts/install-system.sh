#!/usr/bin/env bash
# Install the system tools `make` needs that this machine lacks, from Debian's packages:
# Python 3.11 with venv, a JDK and Maven (Kafka from Maven Central; javac for sdk/java),
# Node.js and npm (buf), Prometheus and promtool, curl, openssl (scripts/certs.sh). Does
# nothing when all are there. Not Go: Debian 12's is 1.19 and sdk/go needs 1.23 or newer
# (scripts/proto.sh says so when it is missing).
set -euo pipefail
declare -A package_of=(
  [python3.11]="python3.11 python3.11-venv"
  [java]="default-jre-headless"
  [javac]="default-jdk-headless"
  [mvn]="maven"
  [npm]="nodejs npm"
  [prometheus]="prometheus"
  [promtool]="prometheus"
  [curl]="curl"
  [openssl]="openssl"
)
missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=(${package_of[$tool]})
done
if ((${#missing[@]} == 0)); then exit 0; fi
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing Debian packages: ${packages[*]}"
sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
