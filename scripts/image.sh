#!/usr/bin/env bash
# The multijuego OCI image, built with buildah from scratch (no Docker
# engine, no base image, nothing pulled):
#
#   scripts/image.sh [VERSION]      (default: dev, the Helm chart's appVersion)
#
# makes localhost/multijuego:VERSION in the local containers storage
# (`podman images`; `podman push` or `buildah push` to move it). Inside:
# the static binary (CGO_ENABLED=0, -trimpath, -s -w, the version stamped
# in as scripts/release.sh does) at /usr/local/bin/multijuego, the host's CA
# certificates, /etc/passwd and /etc/group lines for the user multijuego
# (65532:65532), and /var/lib/multijuego, owned by that user, as the working
# directory and a volume: the state (data_dir, /var/lib/multijuego/data)
# and TMPDIR live there, so the root filesystem can be read-only. No shell.
# Entrypoint multijuego, default command serve, listening on :7350.
#
# IMAGE=name:tag overrides the name; GOARCH=arm64 builds for another
# architecture. Needs buildah, run as root (rootless buildah would need a
# subordinate uid range covering 65532; not tried).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-dev}
image=${IMAGE:-multijuego:$version}
arch=${GOARCH:-$(go env GOARCH)}
certs=${CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
command -v buildah >/dev/null || { echo "buildah is required (Debian/Ubuntu: apt-get install buildah)" >&2; exit 1; }
[ -s "$certs" ] || { echo "no CA certificates at $certs (Debian/Ubuntu: apt-get install ca-certificates; or set CA_CERTS)" >&2; exit 1; }

stage=$(mktemp -d)
ctr=
cleanup() {
  if [ -n "$ctr" ]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$stage"
}
trap cleanup EXIT

mkdir -p "$stage/root/usr/local/bin" "$stage/root/etc/ssl/certs" "$stage/root/var/lib" "$stage/state/multijuego"
echo "building the binary for linux/$arch"
CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath \
  -ldflags "-s -w -X github.com/multijuego/multijuego/internal/app.Version=$version" \
  -o "$stage/root/usr/local/bin/multijuego" ./cmd/multijuego
cp "$certs" "$stage/root/etc/ssl/certs/ca-certificates.crt"
echo 'multijuego:x:65532:65532:multijuego:/var/lib/multijuego:/sbin/nologin' > "$stage/root/etc/passwd"
echo 'multijuego:x:65532:' > "$stage/root/etc/group"
chmod 0755 "$stage/root/usr/local/bin/multijuego"
chmod 0644 "$stage/root/etc/ssl/certs/ca-certificates.crt" "$stage/root/etc/passwd" "$stage/root/etc/group"
chmod 0750 "$stage/state/multijuego"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ctr=$(buildah from --arch "$arch" scratch)
buildah add --quiet --chown 0:0 "$ctr" "$stage/root" / >/dev/null
buildah add --quiet --chown 65532:65532 "$ctr" "$stage/state" /var/lib >/dev/null
buildah config \
  --os linux --arch "$arch" \
  --user 65532:65532 \
  --workingdir /var/lib/multijuego \
  --volume /var/lib/multijuego \
  --env PATH=/usr/local/bin \
  --env TMPDIR=/var/lib/multijuego \
  --env MULTIJUEGO_DATA_DIR=/var/lib/multijuego/data \
  --env MULTIJUEGO_LISTEN=:7350 \
  --entrypoint '["/usr/local/bin/multijuego"]' \
  --cmd serve \
  --port 7350/tcp \
  --label org.opencontainers.image.title=multijuego \
  --label "org.opencontainers.image.description=multijuego, a real-time multiplayer game backend: every role in one static binary" \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$revision" \
  --label org.opencontainers.image.created="$created" \
  --label org.opencontainers.image.source=https://github.com/multijuego/multijuego \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  "$ctr"
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
ctr=
echo "built $image ($(buildah inspect --format '{{.FromImageID}}' "$image" 2>/dev/null | cut -c1-12))"
