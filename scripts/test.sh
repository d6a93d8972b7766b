#!/usr/bin/env bash
# The whole test suite: formatting, vet, race-enabled tests of every package
# (SQLite always; PostgreSQL at 127.0.0.1:5432 unless
# MULTIJUEGO_TEST_DATABASE_URL says otherwise; NATS with JetStream at
# 127.0.0.1:4222 unless MULTIJUEGO_TEST_NATS_URL says otherwise; with CI=true
# a missing PostgreSQL or NATS fails the run; SoftHSM2, for the pkcs11 key
# provider, is installed with apt when missing, and with CI=true its
# absence fails those tests; so are Chromium, buildah, podman, runc and
# promtool, and helm with go install), then each fuzz target for a fixed
# number of executions.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

# vet type-checks test files too: the whole module, tests included, must
# build on macOS and Windows (wsnet's and bots' epoll code is Linux only).
echo "== go vet for darwin/arm64 and windows/amd64"
GOOS=darwin GOARCH=arm64 go vet ./...
GOOS=windows GOARCH=amd64 go vet ./...

echo "== TypeScript SDK (web/sdk): npm ci, typecheck, unit tests"
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "$tool is required for the web/sdk tests (Node.js >= 20)"; exit 1; }
done
node -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("Node.js >= 20 is required, have " + process.version); process.exit(1) }'
(cd web/sdk && npm ci --no-audit --no-fund --prefer-offline --loglevel=error && npm test --silent)
echo "== demo app (web/app): npm ci, typecheck, unit tests"
(cd web/app && npm ci --no-audit --no-fund --prefer-offline --loglevel=error && npm test --silent)
echo "== oauth2-mock-server, the OpenID provider of the OIDC tests (internal/auth/oidc_mock_test.go)"
(cd internal/auth/testdata/oidcmock && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)

echo "== Chromium for the browser tests (cmd/multijuego/browser_test.go)"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } ||
      echo "could not install chromium; the browser tests will fail with CI=true and skip otherwise"
  else
    echo "no /usr/bin/chromium and no apt-get as root: install Debian's chromium package for the browser tests"
  fi
fi

echo "== buildah, podman and runc for the image test (cmd/multijuego/image_test.go)"
if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q buildah podman runc >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q buildah podman runc >/dev/null; } ||
      echo "could not install buildah, podman and runc; the image test will fail with CI=true and skip otherwise"
  else
    echo "buildah, podman or runc missing and no apt-get as root: install them for the image test"
  fi
fi

# helm for the chart test (deploy/chart_test.go). A `go install`ed helm
# reports its version as v3.22 (no patch): that is what is matched.
echo "== helm v3.22.0 for the chart test (deploy/chart_test.go)"
export PATH="$PATH:$(go env GOPATH)/bin"
if ! helm version --template '{{.Version}}' 2>/dev/null | grep -q '^v3\.22'; then
  go install helm.sh/helm/v3/cmd/helm@v3.22.0
fi

# promtool, from Debian's prometheus package (2.42): `go install` of
# promtool did not finish building in 15 minutes on these machines. The
# tests use only its promtool, not the Prometheus server it also holds.
echo "== promtool for the alert rules test (deploy/alerts_test.go)"
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; } ||
      echo "could not install prometheus (promtool); the alert rules test will fail with CI=true and skip otherwise"
  else
    echo "no promtool and no apt-get as root: install Debian's prometheus package for the alert rules test"
  fi
fi

echo "== SoftHSM2 for the pkcs11 key provider's tests (internal/seal/hsm/softhsmtest)"
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q softhsm2 >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q softhsm2 >/dev/null; } ||
      echo "could not install softhsm2; the pkcs11 tests will fail with CI=true and skip otherwise"
  else
    echo "no SoftHSM2 and no apt-get as root: install Debian's softhsm2 package for the pkcs11 tests"
  fi
fi

echo "== go test -race"
go test -race -count=1 -timeout 15m ./...
# A static build (CGO_ENABLED=0, as scripts/release.sh makes) has no
# PKCS#11 binding and must say so.
echo "== without cgo: the pkcs11 provider's error"
CGO_ENABLED=0 go test -count=1 -run 'NoCgo|NeedsCgo|WithoutCgo' ./internal/seal/hsm/ ./internal/app/
# The realtime tests again on wsnet's portable (stream) backend, which
# macOS and Windows run and Linux uses for TLS.
echo "== realtime tests on the portable WebSocket backend"
MULTIJUEGO_WSNET=portable go test -race -count=1 -p 1 ./internal/wsnet/ ./internal/gateway/
(cd examples/studio && go vet ./... && go test -race -count=1 ./...)

# Fuzz budgets are execution counts, not durations: a duration-based
# -fuzztime can fail with a spurious "context deadline exceeded" at its end
# on a loaded machine (Go's fuzz coordinator, golang/go#75804, fixed only in
# Go 1.27). FUZZ_SCALE multiplies every count (default 1).
echo "== fuzz (execution counts x${FUZZ_SCALE:-1})"
for target in "FuzzDecodeJSON ./internal/gateway 40000" "FuzzVerify ./internal/auth 20000" \
  "FuzzDecodeInput ./games/arena 100000" "FuzzDecodeState ./games/arena 40000" "FuzzRestore ./games/arena 40000" \
  "FuzzRealtimeEnvelope ./internal/gateway 40000" "FuzzInputFrame ./internal/gateway 40000" "FuzzParseFrame ./internal/wsnet 40000" \
  "FuzzConsume ./internal/wsnet 40000" "FuzzParseFrame ./internal/bots 100000" "FuzzParseAnswer ./internal/bots 100000" "FuzzCheckTokenPair ./internal/bots 100000" \
  "FuzzDecode ./internal/events 40000" "FuzzNewMatchEvent ./internal/events 40000" "FuzzCheckUUIDv7 ./internal/events 40000" \
  "FuzzAcceptEncoding ./internal/webui 100000" "FuzzPaths ./internal/webui 40000" \
  "FuzzDecodeInputs ./internal/router 40000" "FuzzDecodeOut ./internal/router 40000" "FuzzDecodeSocketOpened ./internal/router 20000" "FuzzParseJWKS ./internal/auth 20000" \
  "FuzzVerify ./internal/events 40000" "FuzzParseIPList ./internal/ratelimit 40000" "FuzzParseRule ./internal/ratelimit 40000" \
  "FuzzParams ./match 40000" "FuzzRecordOpen ./internal/wsnet 20000" "FuzzOpen ./internal/seal 40000" "FuzzIdentityToken ./internal/auth 40000" "FuzzIssuerJWKS ./internal/auth 20000"; do
  set -- $target
  go test -run '^$' -fuzz "^$1\$" -fuzztime "$(( $3 * ${FUZZ_SCALE:-1} ))x" "$2"
done
