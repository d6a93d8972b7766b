#!/usr/bin/env bash
# Arena load on the all-in-one process or on a split deployment, for
# docs/benchmarks.md ("Split deployment").
#
#   scripts/bench-split.sh all   PLAYERS [RUNS]   one `multijuego serve`, embedded everything
#   scripts/bench-split.sh split PLAYERS [RUNS]   auth, persistence, one game node and one
#                                                 gateway as processes on PostgreSQL (127.0.0.1:5432),
#                                                 Redis (127.0.0.1:6379) and a nats-server with
#                                                 JetStream the script starts (127.0.0.1:4299)
#
# Co-located processes get the Go scheduler of the CPU they would have as
# pods: GAME_GOMAXPROCS (default 1) for the game node and NATS_GOMAXPROCS
# (default 1) for nats-server, what a 1-CPU limit sets (Go >= 1.25 reads
# the cgroup limit); the gateway keeps the default (2 here). Set them to 2
# for every process on the default.
#
# PIN=1 (all only) pins the server to CPU 0 and the load tool to CPU 1
# (taskset; the server's GOMAXPROCS is then 1), so the server's tail is its
# own. TLS=1 (all only) serves the
# gateway on a self-signed certificate made here and plays over wss://.
#
# Each run prints the load tool's JSON report on one line. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?all or split}
players=${2:?players}
runs=${3:-3}
bin=$(mktemp -d)/multijuego
go build -o "$bin" ./cmd/multijuego
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "$(dirname "$bin")"
}
trap cleanup EXIT

# start ROLE PORT [FLAGS...]: one process, logs in $work/ROLE.log
start() {
  local role=$1 port=$2; shift 2
  local procs=""
  [ "$role" = game ] && procs=${GAME_GOMAXPROCS:-1}
  [ "${PIN:-0}" = 1 ] && procs=1 # what Go picks itself on one CPU
  GOMAXPROCS=${procs:-$(nproc)} "${server_pin[@]}" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/$role" --log-level warn \
    --auth-signup-ip-limit 1000000 "$@" >"$work/$role.out" 2>"$work/$role.log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -kfsS "${scheme:-http}://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$role did not become ready:" >&2; cat "$work/$role.log" >&2; exit 1
}

server_pin=() bots_pin=()
if [ "${PIN:-0}" = 1 ]; then server_pin=(taskset -c 0) bots_pin=(taskset -c 1); fi

case $mode in
all)
  scheme=http tls=()
  if [ "${TLS:-0}" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
      -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    scheme=https tls=(--gateway-tls-cert-file "$work/cert.pem" --gateway-tls-key-file "$work/key.pem")
    export SSL_CERT_FILE="$work/cert.pem" # the load tool and curl trust it
  fi
  start all 7360 "${tls[@]}"
  url=$scheme://127.0.0.1:7360 metrics=$url/metrics pid=${pids[0]}
  ;;
split)
  db=mjbench_$$
  psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $db" >/dev/null
  trap 'cleanup; psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS '$db' WITH (FORCE)" >/dev/null' EXIT
  GOMAXPROCS=${NATS_GOMAXPROCS:-1} nats-server -a 127.0.0.1 -p 4299 -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/4299) 2>/dev/null && break; sleep 0.1; done
  shared=(--database-url "postgres://postgres@127.0.0.1:5432/$db" --redis-url redis://127.0.0.1:6379/0
    --redis-prefix "bench$$:" --nats-url nats://127.0.0.1:4299)
  start auth 7361 --roles auth --node-id auth1 --gateway-trusted-proxies 127.0.0.0/8 "${shared[@]}"
  start persistence 7362 --roles persistence --node-id persist1 "${shared[@]}"
  start game 7363 --roles game --node-id game1 "${shared[@]}"
  start gateway 7364 --roles gateway --node-id gw1 --gateway-auth-url http://127.0.0.1:7361 "${shared[@]}"
  sleep 3 # the game node's first directory record
  url=http://127.0.0.1:7364 metrics=http://127.0.0.1:7363/metrics pid=${pids[3]}
  ;;
*) echo "mode: all or split" >&2; exit 2 ;;
esac

for run in $(seq 1 "$runs"); do
  "${bots_pin[@]}" "$bin" bots --url "$url" --metrics-url "$metrics" --mode arena --players "$players" \
    --duration 30s --warmup 5s --pid "$pid" --prefix "b$$-" --json --quiet | tail -n 1
done
if [ "$mode" = split ]; then # RSS (KiB) and CPU time of each busy process over all runs
  for p in nats:0 game:3 gateway:4; do echo "${p%:*}: $(ps -o rss=,time= -p "${pids[${p#*:}]}")" >&2; done
fi
