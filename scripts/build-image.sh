#!/usr/bin/env bash
# Builds the POV-Ray worker image (worker-image/) with podman, without any image registry:
#
#   1. the base image `node:22-bookworm-slim` is made locally (once) from a Debian bookworm minbase root file system
#      (debootstrap, from the Debian mirror apt is configured with on this machine) plus this machine's Node.js and
#      npm, and a `node` user (uid/gid 1000) like the official image has;
#   2. `podman build` of worker-image/Dockerfile, tagged lambda-ecs-worker/povray:dev (or $IMAGE).
#
# Idempotent: the debootstrap tarball is cached under .image-build/ and the base image is only imported when missing.
# Usage: bash scripts/build-image.sh            (build)
#        bash scripts/build-image.sh --run ARGS (build, then `podman run` the image with the same flags + ARGS)
#        FORCE_BASE=1 bash scripts/build-image.sh   (rebuild the base image from scratch)
# Needs root (debootstrap, podman with the runc runtime and cgroupfs). Debian packages: debootstrap podman runc.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.image-build"
IMAGE="${IMAGE:-lambda-ecs-worker/povray:dev}"
BASE_NAME="node:22-bookworm-slim"
BASE_REF="docker.io/library/$BASE_NAME"
SUITE="bookworm"

log() { echo "[build-image] $*" >&2; }

for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || { log "missing $tool (apt-get install -y debootstrap podman runc)"; exit 1; }
done

NOFILE="$(ulimit -n)"
PODMAN_FLAGS=(--runtime runc --cgroup-manager=cgroupfs)
CONTAINER_FLAGS=(--network host --ulimit "nofile=$NOFILE:$NOFILE" --ulimit nproc=20000:20000)

# The Debian mirror apt already uses on this machine (first deb URI for the main archive), so no host name is
# hard-coded here. MIRROR=... overrides it.
apt_mirror() {
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri="$(grep -h -i '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)"
    fi
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri="$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list || true)"
    fi
    echo "$uri"
}

base_present() { podman "${PODMAN_FLAGS[@]}" image exists "$BASE_REF"; }

build_base() {
    mkdir -p "$CACHE"
    local tarball="$CACHE/$SUITE-minbase.tar"
    if [[ ! -s "$tarball" ]]; then
        local mirror="${MIRROR:-$(apt_mirror)}"
        [[ -n "$mirror" ]] || { log "cannot find a Debian mirror in the apt configuration; set MIRROR"; exit 1; }
        local dir
        dir="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
        log "debootstrap --variant=minbase $SUITE (mirror from apt configuration)"
        debootstrap --variant=minbase "$SUITE" "$dir" "$mirror" >"$CACHE/debootstrap.log" 2>&1 || {
            tail -n 30 "$CACHE/debootstrap.log" >&2
            rm -rf "$dir"
            exit 1
        }
        # Keep the image small and reproducible-ish: no apt lists, no caches.
        rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb
        tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$dir"
    else
        log "using cached $tarball"
    fi

    # Add this machine's Node.js + npm and the `node` user, then import.
    local node_bin npm_dir stage
    node_bin="$(readlink -f "$(command -v node)")"
    npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" # .../lib/node_modules/npm
    [[ -f "$npm_dir/package.json" ]] || { log "cannot locate npm's directory (got $npm_dir)"; exit 1; }
    stage="$(mktemp -d "$CACHE/stage.XXXXXX")"
    tar -C "$stage" -xf "$tarball"
    install -D -m 0755 "$node_bin" "$stage/usr/local/bin/node"
    mkdir -p "$stage/usr/local/lib/node_modules"
    cp -a "$npm_dir" "$stage/usr/local/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
    chroot "$stage" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
    log "node $("$stage/usr/local/bin/node" --version) from $node_bin"
    tar -C "$stage" --numeric-owner -c . | podman "${PODMAN_FLAGS[@]}" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["node"]' \
        - "$BASE_REF" >/dev/null
    rm -rf "$stage"
    log "imported base image $BASE_REF"
}

if [[ "${FORCE_BASE:-0}" == "1" ]] && base_present; then
    podman "${PODMAN_FLAGS[@]}" rmi -f "$BASE_REF" >/dev/null || true
    rm -f "$CACHE/$SUITE-minbase.tar"
fi
if base_present; then
    log "base image $BASE_REF present"
else
    build_base
fi

# npm inside the build may sit behind a TLS-intercepting proxy: hand it this machine's CA bundle as a build secret
# (not stored in any image layer). NPM_CA_FILE overrides; an empty file means "no extra CA".
CA_FILE="${NPM_CA_FILE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}"
if [[ ! -s "$CA_FILE" ]]; then
    mkdir -p "$CACHE"
    CA_FILE="$CACHE/empty-ca.pem"
    : >"$CA_FILE"
fi

log "podman build -t $IMAGE worker-image"
podman "${PODMAN_FLAGS[@]}" build "${CONTAINER_FLAGS[@]}" --pull=never --secret "id=npm_ca,src=$CA_FILE" \
    -t "$IMAGE" "$ROOT/worker-image"
log "built $IMAGE"

if [[ "${1:-}" == "--run" ]]; then
    shift
    exec podman "${PODMAN_FLAGS[@]}" run --rm "${CONTAINER_FLAGS[@]}" \
        --read-only --tmpfs /scratch --tmpfs /tmp --user 1000:1000 "$IMAGE" "$@"
fi
