#!/usr/bin/env bash
# The whole test suite: formatting, vet, race-enabled tests of every package
# (SQLite always; PostgreSQL at 127.0.0.1:5432 unless
# MULTIJUEGO_TEST_DATABASE_URL says otherwise; with CI=true a missing
# PostgreSQL fails the run), then each fuzz target for FUZZTIME (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 15m ./...

echo "== fuzz (${FUZZTIME:-10s} each)"
for target in "FuzzDecodeJSON ./internal/gateway" "FuzzVerify ./internal/auth" \
  "FuzzDecodeInput ./games/arena" "FuzzDecodeState ./games/arena" "FuzzRestore ./games/arena" \
  "FuzzRealtimeEnvelope ./internal/gateway" "FuzzInputFrame ./internal/gateway" "FuzzParseFrame ./internal/wsnet" \
  "FuzzConsume ./internal/wsnet" "FuzzParseFrame ./internal/bots"; do
  set -- $target
  go test -run '^$' -fuzz "^$1\$" -fuzztime "${FUZZTIME:-10s}" "$2"
done
