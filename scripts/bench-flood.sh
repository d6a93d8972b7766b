#!/usr/bin/env bash
# What one flooding client costs arena players, for docs/benchmarks.md
# ("Abuse limits under a flood"). One `multijuego serve` on the embedded
# default, with loopback as a trusted proxy so the flood can claim a
# non-loopback address (--flood-for 192.0.2.1) and meet the rate limits
# that loopback players on a dev server are spared.
#
#   scripts/bench-flood.sh PLAYERS [RUNS]
#
# 1. The flood alone, RUNS times: rejections per second one client forces
#    and the server's CPU per rejection (server_cpu_us_per_request).
# 2. Arena with PLAYERS players (30 s window), RUNS times without and RUNS
#    times with the flood running through the whole arena run, alternated
#    (baseline, flood, baseline, ...) so drift on the box hits both alike.
#    Compare tick_to_client_ms.p99 and keeps_up; the flood's own line
#    gives its rejections per second meanwhile.
#
# SERVER_FLAGS adds flags to `multijuego serve` (for example
# "--limits-tarpit 0s" to answer refusals at once, without the tarpit).
# FLOOD_KIND (http or ws-control, default http), FLOOD_RPS (default 0: as
# fast as FLOOD_CONNS connections go), FLOOD_CONNS (default 4) shape the
# flood. WINDOW (default 30: seconds) is the arena's measurement window;
# the flood alone measures for 20 s. PIN=1 pins the server to CPU 0 and both load tools to CPU 1.
#
# Each run prints one line: a label, then the tool's JSON report; a summary
# (median of each) follows. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
players=${1:?players}
runs=${2:-3}
kind=${FLOOD_KIND:-http} rps=${FLOOD_RPS:-0} conns=${FLOOD_CONNS:-4} window=${WINDOW:-30}
bin=$(mktemp -d)/multijuego
go build -o "$bin" ./cmd/multijuego
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work" "$(dirname "$bin")"
}
trap cleanup EXIT

server_pin=() bots_pin=()
if [ "${PIN:-0}" = 1 ]; then server_pin=(taskset -c 0) bots_pin=(taskset -c 1); fi

"${server_pin[@]}" "$bin" serve --listen 127.0.0.1:7370 --data-dir "$work/data" --log-level warn \
  --gateway-trusted-proxies 127.0.0.0/8 ${SERVER_FLAGS:-} >"$work/server.out" 2>"$work/server.log" &
pid=$!
url=http://127.0.0.1:7370
for _ in $(seq 1 100); do curl -fsS "$url/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$url/readyz" >/dev/null || { echo "server did not become ready" >&2; cat "$work/server.log" >&2; exit 1; }

# flood DURATION WARMUP: one flood run's JSON line.
flood() {
  "${bots_pin[@]}" "$bin" bots --url "$url" --mode flood --flood-kind "$kind" --flood-rps "$rps" \
    --flood-conns "$conns" --flood-for 192.0.2.1 --duration "$1" --warmup "$2" --pid "$pid" \
    --prefix "f$$-" --json --quiet | tail -n 1
}
arena() {
  "${bots_pin[@]}" "$bin" bots --url "$url" --mode arena --players "$players" --duration "${window}s" --warmup 5s \
    --pid "$pid" --prefix "b$$-" --json --quiet | tail -n 1
}

for run in $(seq 1 "$runs"); do
  echo "flood-alone $(flood "$(( window < 20 ? window : 20 ))s" 2s)" | tee -a "$work/lines"
done
for run in $(seq 1 "$runs"); do
  echo "arena-baseline $(arena)" | tee -a "$work/lines"
  # The flood starts first and outlasts the arena run (seating, warm-up,
  # window): its window is what it forced meanwhile.
  flood "$(( window + 15 ))s" 5s >"$work/flood.json" &
  fpid=$!
  sleep 5
  echo "arena-flood $(arena)" | tee -a "$work/lines"
  wait "$fpid"
  echo "flood-during-arena $(cat "$work/flood.json")" | tee -a "$work/lines"
done

# median LABEL JQ-EXPR: the median of EXPR over LABEL's runs.
median() {
  grep "^$1 " "$work/lines" | cut -d' ' -f2- | jq -s "[.[] | $2] | sort | .[(length-1)/2|floor]"
}
echo "--- medians of $runs runs ($players players, $kind flood, rps $rps, $conns connections)"
echo "flood alone: rejections/s $(median flood-alone .rejections_per_s), requests/s $(median flood-alone .requests_per_s), server us/request $(median flood-alone .server_cpu_us_per_request), server cores $(median flood-alone .server_cpu_cores)"
echo "arena baseline: tick_to_client p99 $(median arena-baseline .tick_to_client_ms.p99) ms, keeps_up $(grep -c '^arena-baseline .*"keeps_up":true' "$work/lines")/$runs, server cores $(median arena-baseline .server_cpu_cores)"
echo "arena + flood:  tick_to_client p99 $(median arena-flood .tick_to_client_ms.p99) ms, keeps_up $(grep -c '^arena-flood .*"keeps_up":true' "$work/lines")/$runs, server cores $(median arena-flood .server_cpu_cores)"
echo "flood during arena: rejections/s $(median flood-during-arena .rejections_per_s), requests/s $(median flood-during-arena .requests_per_s)"
