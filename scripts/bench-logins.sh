#!/usr/bin/env bash
# Login storms, for docs/benchmarks.md ("Login storms"): `multijuego bots
# --mode auth` (50 clients) against one `multijuego serve`, existing devices
# and new accounts, on the embedded default (SQLite) and on PostgreSQL
# (127.0.0.1:5432, a database made and dropped here). A fresh server and
# data dir per run.
#
#   scripts/bench-logins.sh [RUNS] [embedded|postgres|both]
#
# SERVER_FLAGS adds flags to the server (for example
# SERVER_FLAGS=--seal-personal-data=false for the comparison with personal
# data in clear); KINDS chooses "existing new" (the default) or one of them;
# BIN runs that multijuego binary instead of building this tree (to
# compare two builds, alternate them run by run).
# Each run prints: store, kind, then the load tool's JSON report on one
# line. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
which=${2:-both}
duration=${DURATION:-30s}
bin=$(mktemp -d)/multijuego
if [ -n "${BIN:-}" ]; then cp "$BIN" "$bin"; else go build -o "$bin" ./cmd/multijuego; fi
pid= work=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "$work" ] && rm -rf "$work"
  rm -rf "$(dirname "$bin")"
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS mjlogins_$$ WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

run() { # STORE KIND
  local store=$1 kind=$2 flags=() new=()
  work=$(mktemp -d)
  if [ "$store" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS mjlogins_$$ WITH (FORCE)" -c "CREATE DATABASE mjlogins_$$" >/dev/null
    # Not a developer's server: the loopback exemptions are off, so lift
    # the per-address limits the load tool (one address) would meet.
    flags=(--database-url "postgres://postgres@127.0.0.1:5432/mjlogins_$$?sslmode=disable"
      --limits-ip-auth off --auth-signup-ip-limit 100000000)
  fi
  [ "$kind" = new ] && new=(--new-accounts)
  # shellcheck disable=SC2086 # SERVER_FLAGS is a list of words
  "$bin" serve --data-dir "$work" --listen 127.0.0.1:7350 --log-level warn "${flags[@]}" ${SERVER_FLAGS:-} >"$work/out" 2>"$work/log" &
  pid=$!
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:7350/readyz >/dev/null 2>&1 && break; sleep 0.1; done
  echo -n "$store $kind "
  "$bin" bots --url http://127.0.0.1:7350 --mode auth "${new[@]}" --duration "$duration" --warmup 5s --pid "$pid" --json --quiet | tail -n 1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pid=
  rm -rf "$work"; work=
}

stores=(embedded postgres)
[ "$which" != both ] && stores=("$which")
for store in "${stores[@]}"; do
  for kind in ${KINDS:-existing new}; do
    for _ in $(seq 1 "$runs"); do run "$store" "$kind"; done
  done
done
