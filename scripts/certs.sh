#!/usr/bin/env bash
# A local CA, a certificate per party and a SCRAM password per Kafka user (docs/security.md).
#   scripts/certs.sh          make what is missing (run again: nothing changes)
#   scripts/certs.sh renew    new certificates for every party, signed by the same CA: gRPC
#                             and /metrics servers, channels between services and the local
#                             Prometheus take them within seconds, no restart; the broker at
#                             its restart (docs/security.md)
# Parties: every service of the registry, `cli` (the emeuse command, emeuse simulate),
# `prometheus` (the local Prometheus, scraping /metrics over mutual TLS) and `kafka` (the
# broker's secure listener). Each certificate names localhost, 127.0.0.1, the
# party and emeuse-<party> (its Kubernetes Service), plus EMEUSE_TLS_HOSTS (comma-separated
# names or IPs), and serves as both server and client certificate (mutual TLS).
# SECRETS_DIR (default .local/secrets) receives tls/ and kafka/, readable by the owner only.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
secrets="${SECRETS_DIR:-$root/.local/secrets}"
tls="$secrets/tls"
kafka="$secrets/kafka"
CA_DAYS="${CA_DAYS:-3650}"
CERT_DAYS="${CERT_DAYS:-365}"
# The services as the registry names them (a new service gets its certificate and user).
read -r -a services <<<"$(PYTHONPATH="$root/libs" "${PYTHON:-$root/.venv/bin/python}" -c \
  'from emeuse.registry import SERVICES; print(" ".join(SERVICES))')"
parties=("${services[@]}" cli prometheus kafka)
# Kafka users: one per service, one for the tools and one for auditors (the audit trail
# only); the broker has none of its own.
users=("${services[@]}" cli auditor)

umask 077
mkdir -p "$tls" "$kafka"

ca() {
  [[ -f "$tls/ca.crt" && -f "$tls/ca.key" ]] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -days "$CA_DAYS" -subj "/O=e-Meuse sante/CN=e-Meuse local CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
  echo "certs: CA $tls/ca.crt (valid $CA_DAYS days)"
}

names() {  # party -> subjectAltName
  local party="$1" extra san="DNS:localhost,IP:127.0.0.1,DNS:$1,DNS:emeuse-$1"
  IFS=',' read -ra extra <<<"${EMEUSE_TLS_HOSTS:-}"
  for name in "${extra[@]}"; do
    [[ -z "$name" ]] && continue
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then san+=",IP:$name"; else san+=",DNS:$name"; fi
  done
  echo "$san"
}

certificate() {  # party
  local party="$1" ext key crt
  ext="$(mktemp)"
  cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$(names "$party")
EXT
  # Made aside, then each renamed over the old file whole: a running service never reads a
  # file half-written, and one that reads the new key beside the old certificate keeps the
  # pair it has until both are there (libs/emeuse/runtime/certificates.py).
  key="$tls/.$party.key.new" crt="$tls/.$party.crt.new"
  # PKCS#8, unencrypted: what gRPC and the broker's PEM key store both read.
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>/dev/null
  openssl req -new -key "$key" -subj "/O=e-Meuse sante/CN=$party" \
    -out "$tls/$party.csr" 2>/dev/null
  openssl x509 -req -in "$tls/$party.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
    -CAcreateserial -days "$CERT_DAYS" -sha256 -extfile "$ext" -out "$crt" 2>/dev/null
  rm -f "$tls/$party.csr" "$ext"
  # The broker reads key and chain from one PEM file.
  if [[ "$party" == kafka ]]; then
    cat "$key" "$crt" >"$tls/.kafka.pem.new"
    mv -f "$tls/.kafka.pem.new" "$tls/kafka.pem"
  fi
  mv -f "$key" "$tls/$party.key"
  mv -f "$crt" "$tls/$party.crt"
  echo "certs: $party $tls/$party.crt (valid $CERT_DAYS days)"
}

password() {  # user
  local file="$kafka/emeuse-$1.password"
  [[ -f "$file" ]] || openssl rand -hex 24 >"$file"
}

ca
for party in "${parties[@]}"; do
  if [[ "${1:-}" == renew || ! -f "$tls/$party.crt" || ! -f "$tls/$party.key" ]]; then
    certificate "$party"
  fi
done
for user in "${users[@]}"; do password "$user"; done
