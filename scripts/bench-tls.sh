#!/usr/bin/env bash
# The HTTP API through TLS against plain, for docs/benchmarks.md ("Data
# protection"): one `multijuego serve` on the embedded default, once plain
# and once with --gateway-tls-self-signed, alternated run by run; wrk
# (2 threads, 64 keep-alive connections) on an authenticated read,
# GET /v1/account with a player's token (token check, profile cache, JSON).
# The per-address and per-account request limits are lifted (one client
# here is the whole load). Keep-alive: this measures the record layer's
# cost per request, not handshakes.
#
#   scripts/bench-tls.sh [RUNS]
#
# Each run prints: mode, requests/s, p50 and p99 latency. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
duration=${DURATION:-15s}
bin=$(mktemp -d)/multijuego
go build -o "$bin" ./cmd/multijuego
pid= work=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "$work" ] && rm -rf "$work"
  rm -rf "$(dirname "$bin")"
}
trap cleanup EXIT

run() { # plain|tls
  local mode=$1 flags=() scheme=http
  work=$(mktemp -d)
  if [ "$mode" = tls ]; then flags=(--gateway-tls-self-signed); scheme=https; fi
  "$bin" serve --data-dir "$work" --listen 127.0.0.1:7350 --log-level warn "${flags[@]}" \
    --limits-ip-account off --limits-account-account off >"$work/out" 2>"$work/log" &
  pid=$!
  for _ in $(seq 1 100); do curl -kfsS "$scheme://127.0.0.1:7350/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  token=$(curl -ksS -X POST "$scheme://127.0.0.1:7350/v1/auth/device" -H 'Content-Type: application/json' \
    -d '{"device_id":"bench-tls-device-0001"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  local out
  out=$(wrk -t2 -c64 -d"$duration" --latency -H "Authorization: Bearer $token" "$scheme://127.0.0.1:7350/v1/account")
  echo "$mode $(echo "$out" | awk '/Requests\/sec/ {print $2}') rps p50 $(echo "$out" | awk '$1=="50%" {print $2}') p99 $(echo "$out" | awk '$1=="99%" {print $2}')"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pid=
  rm -rf "$work"; work=
}

for _ in $(seq 1 "$runs"); do
  run plain
  run tls
done
