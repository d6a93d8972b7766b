#!/usr/bin/env bash
# Release binaries: multijuego for linux, darwin and windows on amd64 and
# arm64, static (CGO_ENABLED=0), reproducible paths (-trimpath), the
# version stamped in, and SHA256SUMS over them.
#
#   scripts/release.sh VERSION [OUT_DIR]     (OUT_DIR default: dist/VERSION)
#
# TARGETS="linux/amd64 darwin/arm64" builds a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?version, for example v0.9.0}
out=${2:-dist/$version}
targets=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}
mkdir -p "$out"
for t in $targets; do
  os=${t%/*} arch=${t#*/} ext=
  [ "$os" = windows ] && ext=.exe
  name="multijuego_${version}_${os}_${arch}${ext}"
  echo "building $name"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath \
    -ldflags "-s -w -X github.com/multijuego/multijuego/internal/app.Version=$version" \
    -o "$out/$name" ./cmd/multijuego
done
(cd "$out" && sha256sum multijuego_* > SHA256SUMS)
echo "binaries and SHA256SUMS in $out"
